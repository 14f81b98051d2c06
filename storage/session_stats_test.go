package storage_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// scriptedSessionStore is a login session backend whose clock a test sets.
type scriptedSessionStore interface {
	loginSessionStore
	SetClock(now func() time.Time)
	Elevate(ctx context.Context, id string, amr []string, authTime time.Time) error
}

// runSessionStatsContract checks clients and statistics against a scripted
// sequence of logins, uses and logouts, on a clock the test moves.
func runSessionStatsContract(t *testing.T, newStore func(t *testing.T) scriptedSessionStore) {
	t.Run("clients are recorded", func(t *testing.T) {
		store := newStore(t)
		session := newLoginSession("session-1", "user-1", time.Minute)
		createLoginSessions(t, store, session)

		for _, clientID := range []string{"client-b", "client-a", "client-b"} {
			if err := store.AddClient(t.Context(), "session-1", clientID); err != nil {
				t.Fatalf("AddClient(%s): %v", clientID, err)
			}
		}
		if err := store.AddClient(t.Context(), "no-such-session", "client-a"); err == nil {
			t.Error("AddClient to a missing session succeeded")
		}

		got, err := store.Get(t.Context(), "session-1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		slices.Sort(got.Clients)
		if want := []string{"client-a", "client-b"}; !slices.Equal(got.Clients, want) {
			t.Errorf("Clients = %q, want %q", got.Clients, want)
		}
	})

	t.Run("statistics follow a scripted day", func(t *testing.T) {
		store := newStore(t)
		// 40 minutes into an hour, so that the script crosses an hour
		// boundary exactly where its comments state.
		start := time.Now().UTC().Truncate(time.Hour).Add(-30 * time.Hour).Add(40 * time.Minute)
		clock := start
		store.SetClock(func() time.Time { return clock })
		login := func(id, userID string, amr []string, idle time.Duration, clients ...string) {
			t.Helper()
			session := &storage.LoginSession{
				ID: id, UserID: userID, AuthTime: clock.Truncate(time.Second), AMR: amr,
				CreatedAt: clock, LastSeenAt: clock, ExpiresAt: clock.Add(48 * time.Hour),
				IdleTimeout: idle,
			}
			createLoginSessions(t, store, session)
			for _, clientID := range clients {
				if err := store.AddClient(t.Context(), id, clientID); err != nil {
					t.Fatalf("AddClient(%s, %s): %v", id, clientID, err)
				}
			}
		}
		pwd, mfa := []string{"pwd"}, []string{"pwd", "otp"}

		// Hour 0: three logins by two users; one login will lapse when idle.
		login("alice-laptop", "alice", mfa, 0, "app", "shop")
		login("alice-phone", "alice", pwd, 0, "app")
		login("bob-idle", "bob", pwd, time.Hour, "shop")
		// Hour 2: bob's session has lapsed; carol logs in and out again.
		clock = start.Add(2 * time.Hour)
		login("carol-1", "carol", pwd, 0, "app")
		if err := store.Delete(t.Context(), "carol-1"); err != nil {
			t.Fatal(err)
		}
		// Hour 26: alice ends her phone session; dave logs in with MFA.
		clock = start.Add(26 * time.Hour)
		if err := store.Delete(t.Context(), "alice-phone"); err != nil {
			t.Fatal(err)
		}
		login("dave-1", "dave", mfa, 0, "shop")

		stats, err := store.Stats(t.Context())
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		checks := []struct {
			name      string
			got, want int64
		}{
			{"ActiveSessions", stats.ActiveSessions, 2}, // alice-laptop, dave-1
			{"ActiveUsers", stats.ActiveUsers, 2},       // alice, dave
			// Within 24 hours only dave was active: alice's Delete is not
			// activity, and no session was used.
			{"ActiveUsers24h", stats.ActiveUsers24h, 1},
			{"ActiveUsers30d", stats.ActiveUsers30d, 4},
			{"MFASessions", stats.MFASessions, 2},
		}
		for _, check := range checks {
			if check.got != check.want {
				t.Errorf("%s = %d, want %d", check.name, check.got, check.want)
			}
		}
		if want := map[string]int64{"app": 1, "shop": 2}; !maps.Equal(stats.SessionsPerClient, want) {
			t.Errorf("SessionsPerClient = %v, want %v", stats.SessionsPerClient, want)
		}

		if len(stats.LoginsPerHour) != 48 {
			t.Fatalf("LoginsPerHour has %d entries, want 48", len(stats.LoginsPerHour))
		}
		wantLogins := map[time.Time]int64{
			start.Truncate(time.Hour):                     3,
			start.Add(2 * time.Hour).Truncate(time.Hour):  1,
			start.Add(26 * time.Hour).Truncate(time.Hour): 1,
		}
		last := clock.Truncate(time.Hour)
		for i, entry := range stats.LoginsPerHour {
			if wantHour := last.Add(-time.Duration(47-i) * time.Hour); !entry.Hour.Equal(wantHour) {
				t.Errorf("LoginsPerHour[%d].Hour = %v, want %v", i, entry.Hour, wantHour)
			}
			if entry.Count != wantLogins[entry.Hour] {
				t.Errorf("logins in the hour from %v = %d, want %d", entry.Hour, entry.Count, wantLogins[entry.Hour])
			}
		}

		// Using a session is activity; touching alice's laptop session
		// brings her back into the 24-hour count.
		if err := store.Touch(t.Context(), "alice-laptop"); err != nil {
			t.Fatal(err)
		}
		// At 49 hours alice's laptop session has reached its absolute
		// expiry; dave's, from hour 26, lives on.
		clock = start.Add(49 * time.Hour)
		stats, err = store.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		later := []struct {
			name      string
			got, want int64
		}{
			{"ActiveSessions", stats.ActiveSessions, 1},
			{"ActiveUsers", stats.ActiveUsers, 1},
			{"ActiveUsers24h", stats.ActiveUsers24h, 2}, // alice and dave, at hour 26
			{"ActiveUsers30d", stats.ActiveUsers30d, 4},
			{"MFASessions", stats.MFASessions, 1},
		}
		for _, check := range later {
			if check.got != check.want {
				t.Errorf("at hour 49, %s = %d, want %d", check.name, check.got, check.want)
			}
		}
		if want := map[string]int64{"shop": 1}; !maps.Equal(stats.SessionsPerClient, want) {
			t.Errorf("at hour 49, SessionsPerClient = %v, want %v", stats.SessionsPerClient, want)
		}
	})
}

// runElevateContract checks that a second factor added to a live session
// changes its methods and counts it as MFA.
func runElevateContract(t *testing.T, newStore func(t *testing.T) scriptedSessionStore) {
	t.Run("elevate adds a factor", func(t *testing.T) {
		store := newStore(t)
		createLoginSessions(t, store, newLoginSession("session-1", "user-1", time.Minute))
		authTime := time.Now().UTC().Truncate(time.Second)

		if err := store.Elevate(t.Context(), "session-1", []string{"pwd", "otp"}, authTime); err != nil {
			t.Fatalf("Elevate: %v", err)
		}
		if err := store.Elevate(t.Context(), "no-such-session", []string{"pwd", "otp"}, authTime); err == nil {
			t.Error("Elevate of a missing session succeeded")
		}

		got, err := store.Get(t.Context(), "session-1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if want := []string{"pwd", "otp"}; !slices.Equal(got.AMR, want) {
			t.Errorf("AMR = %q, want %q", got.AMR, want)
		}
		if !got.AuthTime.Equal(authTime) {
			t.Errorf("AuthTime = %v, want %v", got.AuthTime, authTime)
		}
		stats, err := store.Stats(t.Context())
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if stats.MFASessions != 1 {
			t.Errorf("MFASessions = %d, want 1", stats.MFASessions)
		}
	})
}
