package userapi

import (
	"sync"
	"time"
)

// Password guessing limits for POST /v1/me/password: after
// maxPasswordFailures wrong current passwords within passwordFailureWindow,
// further attempts are refused until the window ends, so that a stolen
// access token cannot be used to guess the password.
const (
	maxPasswordFailures   = 5
	passwordFailureWindow = 15 * time.Minute
	maxTrackedUsers       = 100_000
)

// failureCounter counts failures per user in process memory.
// NOTE: each replica counts on its own, so n replicas allow n times the
// limit; a shared counter in Redis would close that.
type failureCounter struct {
	mu      sync.Mutex
	entries map[string]failureEntry
	now     func() time.Time
}

type failureEntry struct {
	count int
	since time.Time
}

func newFailureCounter() *failureCounter {
	return &failureCounter{entries: map[string]failureEntry{}, now: time.Now}
}

// blocked reports how long the user must wait, or zero.
func (f *failureCounter) blocked(userID string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	entry, ok := f.entries[userID]
	if !ok {
		return 0
	}
	end := entry.since.Add(passwordFailureWindow)
	if !f.now().Before(end) {
		delete(f.entries, userID)
		return 0
	}
	if entry.count < maxPasswordFailures {
		return 0
	}
	return end.Sub(f.now())
}

// fail records one failure.
func (f *failureCounter) fail(userID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	entry, ok := f.entries[userID]
	if !ok || !now.Before(entry.since.Add(passwordFailureWindow)) {
		if len(f.entries) >= maxTrackedUsers {
			clear(f.entries)
		}
		entry = failureEntry{since: now}
	}
	entry.count++
	f.entries[userID] = entry
}

// reset clears a user's failures after a success.
func (f *failureCounter) reset(userID string) {
	f.mu.Lock()
	delete(f.entries, userID)
	f.mu.Unlock()
}
