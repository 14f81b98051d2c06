package storage

import (
	"container/heap"
	"time"
)

// expiringSet holds members that each stay until a deadline. Counting the
// live members costs time in proportion to the members that lapsed since
// the last count, not to all members: lapsed deadlines come off a min-heap.
// The heap may hold outdated entries for a member whose deadline moved; the
// map holds the current deadline and decides.
type expiringSet struct {
	deadlines map[string]time.Time
	queue     deadlineQueue
}

func newExpiringSet() *expiringSet {
	return &expiringSet{deadlines: map[string]time.Time{}}
}

// set gives member a new deadline, earlier or later than its current one.
func (s *expiringSet) set(member string, deadline time.Time) {
	if current, ok := s.deadlines[member]; ok && current.Equal(deadline) {
		return
	}
	s.deadlines[member] = deadline
	heap.Push(&s.queue, deadlineEntry{member: member, deadline: deadline})
	// Every set leaves the member's earlier entry behind; rebuild the heap
	// before those outnumber the live entries.
	if len(s.queue) > 2*len(s.deadlines)+64 {
		s.rebuild()
	}
}

// extend moves member's deadline later, or adds it; it never shortens one.
func (s *expiringSet) extend(member string, deadline time.Time) {
	if current, ok := s.deadlines[member]; ok && !deadline.After(current) {
		return
	}
	s.set(member, deadline)
}

// update sets member's deadline only if member is present.
func (s *expiringSet) update(member string, deadline time.Time) {
	if _, ok := s.deadlines[member]; ok {
		s.set(member, deadline)
	}
}

func (s *expiringSet) remove(member string) {
	delete(s.deadlines, member)
}

func (s *expiringSet) contains(member string, now time.Time) bool {
	deadline, ok := s.deadlines[member]
	return ok && deadline.After(now)
}

// expire drops the members whose deadline is not after now and returns
// them.
func (s *expiringSet) expire(now time.Time) []string {
	var lapsed []string
	for len(s.queue) > 0 && !s.queue[0].deadline.After(now) {
		entry := heap.Pop(&s.queue).(deadlineEntry)
		deadline, ok := s.deadlines[entry.member]
		if ok && !deadline.After(now) {
			delete(s.deadlines, entry.member)
			lapsed = append(lapsed, entry.member)
		}
	}
	return lapsed
}

// count returns how many members are live at now.
func (s *expiringSet) count(now time.Time) int {
	s.expire(now)
	return len(s.deadlines)
}

func (s *expiringSet) rebuild() {
	s.queue = s.queue[:0]
	for member, deadline := range s.deadlines {
		s.queue = append(s.queue, deadlineEntry{member: member, deadline: deadline})
	}
	heap.Init(&s.queue)
}

type deadlineEntry struct {
	member   string
	deadline time.Time
}

// deadlineQueue is a min-heap of deadlines for container/heap.
type deadlineQueue []deadlineEntry

func (q deadlineQueue) Len() int           { return len(q) }
func (q deadlineQueue) Less(i, j int) bool { return q[i].deadline.Before(q[j].deadline) }
func (q deadlineQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *deadlineQueue) Push(x any)        { *q = append(*q, x.(deadlineEntry)) }
func (q *deadlineQueue) Pop() any {
	old := *q
	entry := old[len(old)-1]
	*q = old[:len(old)-1]
	return entry
}
