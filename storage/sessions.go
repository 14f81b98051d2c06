package storage

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ory/fosite"
)

// LoginSession is a person's authenticated session at the provider: the
// OpenID Connect "sid". Its id is a hash of the secret in the browser's
// cookie, so that the id can be shown and logged.
type LoginSession struct {
	ID       string
	UserID   string
	AuthTime time.Time
	// AMR lists the authentication methods used, as in RFC 8176 ("pwd").
	AMR        []string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end of the session, whatever its activity.
	ExpiresAt time.Time
	// IdleTimeout ends the session when it is not used for that long.
	IdleTimeout time.Duration
	UserAgent   string
	RemoteAddr  string
	// Clients lists the clients that were issued an authorization code in
	// this session.
	Clients []string
}

// clone returns a deep copy of s.
func (s *LoginSession) clone() *LoginSession {
	copied := *s
	copied.AMR = slices.Clone(s.AMR)
	copied.Clients = slices.Clone(s.Clients)
	return &copied
}

// Deadline is when the session ends if it is not used again: the earlier
// of its absolute expiry and the end of its idle timeout.
func (s *LoginSession) Deadline() time.Time {
	if s.IdleTimeout <= 0 {
		return s.ExpiresAt
	}
	idleEnd := s.LastSeenAt.Add(s.IdleTimeout)
	if idleEnd.Before(s.ExpiresAt) {
		return idleEnd
	}
	return s.ExpiresAt
}

// alive reports whether the session is within both its absolute lifetime
// and its idle timeout at now.
func (s *LoginSession) alive(now time.Time) bool {
	return now.Before(s.Deadline())
}

// UsedMFA reports whether the session was authenticated with more than one
// factor: amr holds "mfa", or two or more distinct methods.
func (s *LoginSession) UsedMFA() bool {
	if slices.Contains(s.AMR, "mfa") {
		return true
	}
	methods := slices.Clone(s.AMR)
	slices.Sort(methods)
	return len(slices.Compact(methods)) >= 2
}

// SessionStats describes the live login sessions. Stores keep the counters
// behind it up to date as sessions are created, used and ended, so reading
// it does not walk every session.
type SessionStats struct {
	ActiveSessions int64
	// ActiveUsers counts distinct users with at least one live session.
	ActiveUsers int64
	// ActiveUsers24h and ActiveUsers30d count distinct users who signed in
	// or used a session within the last 24 hours and 30 days.
	ActiveUsers24h int64
	ActiveUsers30d int64
	// LoginsPerHour holds the logins of each of the last 48 clock hours,
	// oldest first; the last entry is the current, partial hour.
	LoginsPerHour []HourlyCount
	// SessionsPerClient counts live sessions in which each client was
	// issued a code. Clients without live sessions are left out.
	SessionsPerClient map[string]int64
	// MFASessions counts live sessions for which UsedMFA holds.
	MFASessions int64
}

// HourlyCount is a count for the clock hour starting at Hour (UTC).
type HourlyCount struct {
	Hour  time.Time
	Count int64
}

// statsHours is how many hours of logins SessionStats reports.
const statsHours = 48

// Activity windows of SessionStats.
const (
	activityDay   = 24 * time.Hour
	activityMonth = 30 * 24 * time.Hour
)

// statsHourStarts returns the starts of the statsHours clock hours ending
// with the one holding now, oldest first.
func statsHourStarts(now time.Time) []time.Time {
	current := now.UTC().Truncate(time.Hour)
	hours := make([]time.Time, statsHours)
	for i := range hours {
		hours[i] = current.Add(-time.Duration(statsHours-1-i) * time.Hour)
	}
	return hours
}

// MemorySessionStore keeps login sessions in process memory. It is the
// embedded default: sessions are lost on restart and not shared between
// replicas.
type MemorySessionStore struct {
	mu       sync.Mutex
	sessions map[string]*LoginSession
	byUser   map[string]map[string]struct{}
	now      func() time.Time

	// The counters behind Stats.
	live        *expiringSet // session id until its deadline
	mfa         *expiringSet // session id, for sessions that used MFA
	users       *expiringSet // user id until the last deadline of their sessions
	clients     map[string]*expiringSet
	activeDay   *expiringSet // user id until a day after their last activity
	activeMonth *expiringSet
	logins      map[time.Time]int64 // logins per clock hour
}

// NewMemorySessionStore returns an empty store using the wall clock.
func NewMemorySessionStore() *MemorySessionStore {
	return &MemorySessionStore{
		sessions:    map[string]*LoginSession{},
		byUser:      map[string]map[string]struct{}{},
		now:         time.Now,
		live:        newExpiringSet(),
		mfa:         newExpiringSet(),
		users:       newExpiringSet(),
		clients:     map[string]*expiringSet{},
		activeDay:   newExpiringSet(),
		activeMonth: newExpiringSet(),
		logins:      map[time.Time]int64{},
	}
}

// SetClock replaces the wall clock, for tests that script time.
func (m *MemorySessionStore) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
}

// Create stores a new session and counts it as a login.
func (m *MemorySessionStore) Create(ctx context.Context, s *LoginSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.expireLocked(now)
	stored := s.clone()
	m.sessions[s.ID] = stored
	if m.byUser[s.UserID] == nil {
		m.byUser[s.UserID] = map[string]struct{}{}
	}
	m.byUser[s.UserID][s.ID] = struct{}{}

	deadline := stored.Deadline()
	m.live.set(s.ID, deadline)
	if stored.UsedMFA() {
		m.mfa.set(s.ID, deadline)
	}
	m.users.extend(s.UserID, deadline)
	for _, clientID := range stored.Clients {
		m.clientSet(clientID).set(s.ID, deadline)
	}
	m.recordActivityLocked(s.UserID, now)

	hour := now.UTC().Truncate(time.Hour)
	m.logins[hour]++
	for start := range m.logins {
		if now.Sub(start) >= statsHours*time.Hour {
			delete(m.logins, start)
		}
	}
	return nil
}

func (m *MemorySessionStore) clientSet(clientID string) *expiringSet {
	set, ok := m.clients[clientID]
	if !ok {
		set = newExpiringSet()
		m.clients[clientID] = set
	}
	return set
}

func (m *MemorySessionStore) recordActivityLocked(userID string, now time.Time) {
	m.activeDay.set(userID, now.Add(activityDay))
	m.activeMonth.set(userID, now.Add(activityMonth))
}

// liveLocked returns the stored session with id if it is live, or nil.
func (m *MemorySessionStore) liveLocked(id string, now time.Time) *LoginSession {
	s, ok := m.sessions[id]
	if !ok || !s.alive(now) {
		return nil
	}
	return s
}

// Get returns a live session, or fosite.ErrNotFound.
func (m *MemorySessionStore) Get(ctx context.Context, id string) (*LoginSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.liveLocked(id, m.now())
	if s == nil {
		return nil, fosite.ErrNotFound
	}
	return s.clone(), nil
}

// Touch records activity on a live session, extending its idle timeout but
// never its absolute lifetime.
func (m *MemorySessionStore) Touch(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	s := m.liveLocked(id, now)
	if s == nil {
		return fosite.ErrNotFound
	}
	s.LastSeenAt = now
	deadline := s.Deadline()
	m.live.set(id, deadline)
	m.mfa.update(id, deadline)
	m.users.extend(s.UserID, deadline)
	for _, clientID := range s.Clients {
		m.clientSet(clientID).set(id, deadline)
	}
	m.recordActivityLocked(s.UserID, now)
	return nil
}

// AddClient records that clientID was issued a code in a live session.
func (m *MemorySessionStore) AddClient(ctx context.Context, id, clientID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.liveLocked(id, m.now())
	if s == nil {
		return fosite.ErrNotFound
	}
	if !slices.Contains(s.Clients, clientID) {
		s.Clients = append(s.Clients, clientID)
	}
	m.clientSet(clientID).set(id, s.Deadline())
	return nil
}

// ListByUser returns a user's live sessions, newest first.
func (m *MemorySessionStore) ListByUser(ctx context.Context, userID string) ([]*LoginSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var result []*LoginSession
	for id := range m.byUser[userID] {
		if s := m.liveLocked(id, now); s != nil {
			result = append(result, s.clone())
		}
	}
	sortNewestFirst(result)
	return result, nil
}

// sortNewestFirst orders sessions by creation time, newest first.
func sortNewestFirst(sessions []*LoginSession) {
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].CreatedAt.After(sessions[j].CreatedAt) })
}

// Delete removes one session. Deleting a missing session is not an error.
func (m *MemorySessionStore) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleteLocked(id, m.now())
	return nil
}

// DeleteByUser removes every session of a user.
func (m *MemorySessionStore) DeleteByUser(ctx context.Context, userID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for id := range m.byUser[userID] {
		m.deleteLocked(id, now)
	}
	return nil
}

// deleteLocked removes a session from the store and every counter. The
// caller must hold m.mu.
func (m *MemorySessionStore) deleteLocked(id string, now time.Time) {
	s, ok := m.sessions[id]
	if !ok {
		return
	}
	delete(m.sessions, id)
	delete(m.byUser[s.UserID], id)
	if len(m.byUser[s.UserID]) == 0 {
		delete(m.byUser, s.UserID)
	}
	m.live.remove(id)
	m.mfa.remove(id)
	for _, clientID := range s.Clients {
		if set, ok := m.clients[clientID]; ok {
			set.remove(id)
		}
	}

	// The user stays counted until the last deadline of their other
	// sessions.
	var last time.Time
	for other := range m.byUser[s.UserID] {
		if deadline := m.sessions[other].Deadline(); deadline.After(last) {
			last = deadline
		}
	}
	if last.After(now) {
		m.users.set(s.UserID, last)
	} else {
		m.users.remove(s.UserID)
	}
}

// expireLocked deletes sessions past their deadline. The caller must hold
// m.mu.
func (m *MemorySessionStore) expireLocked(now time.Time) {
	for _, id := range m.live.expire(now) {
		m.deleteLocked(id, now)
	}
}

// Stats returns the session statistics at the store's clock.
func (m *MemorySessionStore) Stats(ctx context.Context) (*SessionStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.expireLocked(now)
	stats := &SessionStats{
		ActiveSessions:    int64(m.live.count(now)),
		ActiveUsers:       int64(m.users.count(now)),
		ActiveUsers24h:    int64(m.activeDay.count(now)),
		ActiveUsers30d:    int64(m.activeMonth.count(now)),
		MFASessions:       int64(m.mfa.count(now)),
		SessionsPerClient: map[string]int64{},
	}
	for clientID, set := range m.clients {
		if n := set.count(now); n > 0 {
			stats.SessionsPerClient[clientID] = int64(n)
		} else {
			delete(m.clients, clientID)
		}
	}
	for _, hour := range statsHourStarts(now) {
		stats.LoginsPerHour = append(stats.LoginsPerHour, HourlyCount{Hour: hour, Count: m.logins[hour]})
	}
	return stats, nil
}

// Elevate records a further authentication in a live session, such as a
// second factor after the password or a new sign-in: it replaces the
// methods and the authentication time, and counts the session as MFA
// exactly when UsedMFA now holds.
func (m *MemorySessionStore) Elevate(ctx context.Context, id string, amr []string, authTime time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.liveLocked(id, m.now())
	if s == nil {
		return fosite.ErrNotFound
	}
	s.AMR = slices.Clone(amr)
	s.AuthTime = authTime
	if s.UsedMFA() {
		m.mfa.set(id, s.Deadline())
	} else {
		m.mfa.remove(id)
	}
	return nil
}
