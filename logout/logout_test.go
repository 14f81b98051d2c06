package logout_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/backchannel"
	"github.com/latchkey/latchkey/logout"
	"github.com/latchkey/latchkey/storage"
)

// fakeSessions is a session store whose Delete can fail.
type fakeSessions struct {
	mu        sync.Mutex
	sessions  map[string]*storage.LoginSession
	deleteErr error
}

func (f *fakeSessions) Get(ctx context.Context, id string) (*storage.LoginSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[id]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	copied := *s
	copied.Clients = slices.Clone(s.Clients)
	return &copied, nil
}

func (f *fakeSessions) ListByUser(ctx context.Context, userID string) ([]*storage.LoginSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var result []*storage.LoginSession
	for _, s := range f.sessions {
		if s.UserID == userID {
			copied := *s
			result = append(result, &copied)
		}
	}
	return result, nil
}

func (f *fakeSessions) Delete(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleteErr != nil {
		return f.deleteErr
	}
	delete(f.sessions, id)
	return nil
}

// fakeStore records revocations and audit events.
type fakeStore struct {
	mu      sync.Mutex
	revoked []string
	events  []*storage.AuditEvent
	clients map[string]*storage.Client
}

func (f *fakeStore) RevokeSessionTokens(ctx context.Context, sessionID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, sessionID)
	return nil
}

func (f *fakeStore) AppendAuditEvent(ctx context.Context, event *storage.AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, event)
	return nil
}

func (f *fakeStore) GetClientByID(ctx context.Context, id string) (*storage.Client, error) {
	client, ok := f.clients[id]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	return client, nil
}

func (f *fakeStore) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return fn(ctx)
}

// fakeNotifier records the targets of each call.
type fakeNotifier struct {
	mu      sync.Mutex
	targets []backchannel.Target
	sids    []string
}

func (f *fakeNotifier) Notify(ctx context.Context, subject, sessionID string, targets []backchannel.Target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets = append(f.targets, targets...)
	f.sids = append(f.sids, sessionID)
}

func newFixture() (*fakeSessions, *fakeStore, *fakeNotifier, *logout.Ender) {
	sessions := &fakeSessions{sessions: map[string]*storage.LoginSession{
		"sid-1": {ID: "sid-1", UserID: "user-1", Clients: []string{"app"}},
		"sid-2": {ID: "sid-2", UserID: "user-1"},
	}}
	store := &fakeStore{clients: map[string]*storage.Client{
		"app":   {ID: "app", BackchannelLogoutURI: "https://app.example/logout"},
		"shop":  {ID: "shop", BackchannelLogoutURI: "https://shop.example/logout", IDTokenSignedResponseAlg: "ES256"},
		"quiet": {ID: "quiet"},
	}}
	notifier := &fakeNotifier{}
	return sessions, store, notifier, logout.NewEnder(sessions, store, notifier, nil)
}

func TestEndRecordsAndNotifies(t *testing.T) {
	sessions, store, notifier, ender := newFixture()
	// The caller read the session before any client got a code in it.
	stale := &storage.LoginSession{ID: "sid-1", UserID: "user-1"}
	sessions.sessions["sid-1"].Clients = []string{"app", "shop", "quiet"}

	event := &storage.AuditEvent{ActorType: storage.ActorUser, ActorID: "user-1", Details: map[string]any{"reason": "user_request"}}
	if err := ender.End(t.Context(), stale, event); err != nil {
		t.Fatalf("End: %v", err)
	}

	if _, err := sessions.Get(t.Context(), "sid-1"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("session still present after End: %v", err)
	}
	if want := []string{"sid-1", "sid-1"}; !slices.Equal(store.revoked, want) {
		t.Errorf("revocations = %q, want %q (before and after the delete)", store.revoked, want)
	}
	if len(store.events) != 1 {
		t.Fatalf("%d audit events, want 1", len(store.events))
	}
	recorded := store.events[0]
	if recorded.Action != logout.ActionSessionEnded {
		t.Errorf("audit action = %q, want %q", recorded.Action, logout.ActionSessionEnded)
	}
	if recorded.Subject != "user-1" {
		t.Errorf("audit subject = %q, want user-1", recorded.Subject)
	}
	if recorded.Details["sid"] != "sid-1" {
		t.Errorf("audit sid = %v, want sid-1", recorded.Details["sid"])
	}
	if recorded.Details["reason"] != "user_request" {
		t.Errorf("audit reason = %v, want user_request", recorded.Details["reason"])
	}
	if _, changed := event.Details["sid"]; changed {
		t.Error("End changed the caller's event details")
	}
	var notified []string
	for _, target := range notifier.targets {
		notified = append(notified, target.ClientID)
	}
	slices.Sort(notified)
	if want := []string{"app", "shop"}; !slices.Equal(notified, want) {
		t.Errorf("notified clients = %q, want %q (recorded after the caller's read, without the one lacking a URI)", notified, want)
	}
}

func TestEndKeepsSessionWhenDeleteFails(t *testing.T) {
	sessions, store, notifier, ender := newFixture()
	sessions.deleteErr = errors.Join(storage.ErrUnavailable, errors.New("connection refused"))

	err := ender.End(t.Context(), sessions.sessions["sid-1"], &storage.AuditEvent{})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("End error = %v, want ErrUnavailable", err)
	}

	if _, err := sessions.Get(t.Context(), "sid-1"); err != nil {
		t.Errorf("session gone although its delete failed: %v", err)
	}
	if len(store.events) != 0 {
		t.Errorf("audit events = %d, want none for a session that did not end", len(store.events))
	}
	if len(notifier.targets) != 0 {
		t.Errorf("notified %d clients of a session that did not end", len(notifier.targets))
	}
}

func TestEndAllOfKeepsOne(t *testing.T) {
	sessions, store, _, ender := newFixture()

	if err := ender.EndAllOf(t.Context(), "user-1", "sid-2", &storage.AuditEvent{}); err != nil {
		t.Fatalf("EndAllOf: %v", err)
	}

	if _, err := sessions.Get(t.Context(), "sid-1"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("sid-1 still present: %v", err)
	}
	if _, err := sessions.Get(t.Context(), "sid-2"); err != nil {
		t.Errorf("kept session sid-2 is gone: %v", err)
	}
	if len(store.events) != 1 {
		t.Errorf("audit events = %d, want 1", len(store.events))
	}
}
