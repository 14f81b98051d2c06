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
// OpenID Connect "sid". Its id travels in a cookie.
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
}

// clone returns a deep copy of s.
func (s *LoginSession) clone() *LoginSession {
	copied := *s
	copied.AMR = slices.Clone(s.AMR)
	return &copied
}

// alive reports whether the session is within both its absolute lifetime
// and its idle timeout at now.
func (s *LoginSession) alive(now time.Time) bool {
	if !now.Before(s.ExpiresAt) {
		return false
	}
	return s.IdleTimeout <= 0 || now.Before(s.LastSeenAt.Add(s.IdleTimeout))
}

// MemorySessionStore keeps login sessions in process memory. It is the
// embedded default: sessions are lost on restart and not shared between
// replicas.
type MemorySessionStore struct {
	mu       sync.Mutex
	sessions map[string]*LoginSession
	now      func() time.Time
}

// NewMemorySessionStore returns an empty store using the wall clock.
func NewMemorySessionStore() *MemorySessionStore {
	return &MemorySessionStore{sessions: map[string]*LoginSession{}, now: time.Now}
}

// Create stores a new session.
func (m *MemorySessionStore) Create(ctx context.Context, s *LoginSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.purgeLocked()
	m.sessions[s.ID] = s.clone()
	return nil
}

// Get returns a live session, or fosite.ErrNotFound.
func (m *MemorySessionStore) Get(ctx context.Context, id string) (*LoginSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok || !s.alive(m.now()) {
		delete(m.sessions, id)
		return nil, fosite.ErrNotFound
	}
	return s.clone(), nil
}

// Touch records activity on a live session, extending its idle timeout but
// never its absolute lifetime.
func (m *MemorySessionStore) Touch(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	now := m.now()
	if !ok || !s.alive(now) {
		delete(m.sessions, id)
		return fosite.ErrNotFound
	}
	s.LastSeenAt = now
	return nil
}

// ListByUser returns a user's live sessions, newest first.
func (m *MemorySessionStore) ListByUser(ctx context.Context, userID string) ([]*LoginSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var result []*LoginSession
	for _, s := range m.sessions {
		if s.UserID == userID && s.alive(now) {
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
	delete(m.sessions, id)
	return nil
}

// DeleteByUser removes every session of a user.
func (m *MemorySessionStore) DeleteByUser(ctx context.Context, userID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.sessions {
		if s.UserID == userID {
			delete(m.sessions, id)
		}
	}
	return nil
}

// purgeLocked drops expired sessions. The caller must hold m.mu.
func (m *MemorySessionStore) purgeLocked() {
	now := m.now()
	for id, s := range m.sessions {
		if !s.alive(now) {
			delete(m.sessions, id)
		}
	}
}
