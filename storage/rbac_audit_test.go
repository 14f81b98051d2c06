package storage_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

func forEachBackend(t *testing.T, test func(t *testing.T, store *storage.Store, db *storage.Database)) {
	t.Run("sqlite", func(t *testing.T) {
		db := storagetest.NewDatabaseOn(t, storagetest.SQLite)
		test(t, storage.NewStore(db), db)
	})
	t.Run("postgres", func(t *testing.T) {
		skipWithoutServices(t)
		db := storagetest.NewDatabaseOn(t, storagetest.Postgres)
		test(t, storage.NewStore(db), db)
	})
}

func TestRoles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store, _ *storage.Database) {
		ctx := t.Context()
		admin, err := store.GetRole(ctx, storage.RoleAdmin)
		if err != nil {
			t.Fatalf("built-in admin role: %v", err)
		}
		if !slices.Contains(admin.Permissions, storage.PermissionAuditRead) {
			t.Errorf("admin permissions = %v", admin.Permissions)
		}
		if _, err := store.GetRole(ctx, storage.RoleUser); err != nil {
			t.Errorf("built-in user role: %v", err)
		}

		auditor := &storage.Role{Name: "auditor", Permissions: []string{"audit:read", "reports:export", "audit:read"}}
		if err := store.CreateRole(ctx, auditor); err != nil {
			t.Fatal(err)
		}
		if err := store.CreateRole(ctx, &storage.Role{Name: "auditor"}); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("duplicate role name: %v, want ErrConflict", err)
		}
		user := createUser(t, store, userID1, "alice")
		if err := store.AssignRole(ctx, user.ID, auditor.ID); err != nil {
			t.Fatal(err)
		}
		if err := store.AssignRole(ctx, user.ID, auditor.ID); err != nil {
			t.Errorf("assigning a role twice: %v", err)
		}

		permissions, err := store.UserPermissions(ctx, user.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(permissions, []string{"audit:read", "reports:export"}) {
			t.Errorf("permissions = %v", permissions)
		}

		auditor.Permissions = []string{"reports:export"}
		if err := store.UpdateRole(ctx, auditor); err != nil {
			t.Fatal(err)
		}
		if permissions, _ := store.UserPermissions(ctx, user.ID); !slices.Equal(permissions, []string{"reports:export"}) {
			t.Errorf("permissions after update = %v", permissions)
		}
		if err := store.RemoveRole(ctx, user.ID, auditor.ID); err != nil {
			t.Fatal(err)
		}
		if permissions, _ := store.UserPermissions(ctx, user.ID); len(permissions) != 0 {
			t.Errorf("permissions after removal = %v", permissions)
		}
		if err := store.DeleteRole(ctx, auditor.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := store.GetRole(ctx, auditor.ID); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("deleted role: %v", err)
		}
	})
}

func TestAuditChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store, db *storage.Database) {
		ctx := t.Context()
		for i := range 5 {
			event := &storage.AuditEvent{
				ActorType: storage.ActorUser, ActorID: fmt.Sprintf("user-%d", i%2), Subject: "subject",
				Action: "user.updated", IPAddress: "127.0.0.1", Details: map[string]any{"field": "name", "n": i},
			}
			if err := store.AppendAuditEvent(ctx, event); err != nil {
				t.Fatal(err)
			}
		}
		verification, err := store.VerifyAuditChain(ctx)
		if err != nil || verification.BrokenSeq != 0 || verification.Checked != 5 {
			t.Fatalf("intact chain: %+v, %v", verification, err)
		}

		events, err := store.ListAuditEvents(ctx, storage.AuditFilter{ActorID: "user-1", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 || events[0].Seq < events[1].Seq {
			t.Errorf("events of user-1 = %d, want 2 newest first", len(events))
		}
		page, _ := store.ListAuditEvents(ctx, storage.AuditFilter{Limit: 2})
		next, _ := store.ListAuditEvents(ctx, storage.AuditFilter{Limit: 2, BeforeSeq: page[1].Seq})
		if len(next) != 2 || next[0].Seq >= page[1].Seq {
			t.Errorf("second page does not continue the first")
		}

		// An attacker with database access edits the third row.
		if err := db.DB.Exec("UPDATE audit_events SET outcome = 'failure' WHERE seq = ?", page[1].Seq-1).Error; err != nil {
			t.Fatal(err)
		}
		verification, err = store.VerifyAuditChain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if verification.BrokenSeq != page[1].Seq-1 {
			t.Errorf("tampered row %d, verification reports %+v", page[1].Seq-1, verification)
		}
	})
}

func TestAuditPruneKeepsChainVerifiable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store, _ *storage.Database) {
		ctx := t.Context()
		old := time.Now().Add(-48 * time.Hour)
		for i := range 4 {
			occurred := time.Now()
			if i < 3 {
				occurred = old
			}
			if err := store.AppendAuditEvent(ctx, &storage.AuditEvent{ActorType: storage.ActorSystem, Action: "test", OccurredAt: occurred}); err != nil {
				t.Fatal(err)
			}
		}
		deleted, err := store.PruneAuditEvents(ctx, time.Now().Add(-24*time.Hour), 2)
		if err != nil || deleted != 3 {
			t.Fatalf("pruned %d, %v; want 3", deleted, err)
		}
		verification, err := store.VerifyAuditChain(ctx)
		if err != nil || verification.BrokenSeq != 0 || verification.Checked != 2 {
			t.Errorf("after pruning: %+v, %v; want the remaining event and the pruning record intact", verification, err)
		}
	})
}

func TestAuditChainDetectsDeletedOldestRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store, db *storage.Database) {
		ctx := t.Context()
		store.SetAuditKey([]byte("0123456789abcdef0123456789abcdef"))
		for range 3 {
			if err := store.AppendAuditEvent(ctx, &storage.AuditEvent{ActorType: storage.ActorSystem, Action: "test"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.DB.Exec("DELETE FROM audit_events WHERE seq = (SELECT MIN(seq) FROM audit_events)").Error; err != nil {
			t.Fatal(err)
		}
		verification, err := store.VerifyAuditChain(ctx)
		if err != nil || verification.BrokenSeq == 0 {
			t.Errorf("oldest row deleted without pruning: %+v, %v; want a broken link", verification, err)
		}
	})
}

func TestAuditPruneByChainOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store, _ *storage.Database) {
		ctx := t.Context()
		now := time.Now()
		// Clocks disagree with the chain: the third event claims to be older
		// than the second.
		for _, age := range []time.Duration{48 * time.Hour, 23 * time.Hour, 25 * time.Hour, 0} {
			event := &storage.AuditEvent{ActorType: storage.ActorSystem, Action: "test", OccurredAt: now.Add(-age)}
			if err := store.AppendAuditEvent(ctx, event); err != nil {
				t.Fatal(err)
			}
		}
		deleted, err := store.PruneAuditEvents(ctx, now.Add(-24*time.Hour), 0)
		if err != nil || deleted != 1 {
			t.Errorf("pruned %d, %v; want only the leading event older than the cutoff", deleted, err)
		}
		verification, err := store.VerifyAuditChain(ctx)
		if err != nil || verification.BrokenSeq != 0 {
			t.Errorf("after pruning: %+v, %v", verification, err)
		}
	})
}

func TestKeyedAuditChainNeedsTheKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store, _ *storage.Database) {
		ctx := t.Context()
		store.SetAuditKey([]byte("0123456789abcdef0123456789abcdef"))
		if err := store.AppendAuditEvent(ctx, &storage.AuditEvent{ActorType: storage.ActorSystem, Action: "test"}); err != nil {
			t.Fatal(err)
		}
		store.SetAuditKey(nil)
		verification, err := store.VerifyAuditChain(ctx)
		if err != nil || verification.BrokenSeq == 0 {
			t.Errorf("verified a keyed chain without its key: %+v, %v", verification, err)
		}
	})
}

func TestAuditEventWithInvalidText(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store, db *storage.Database) {
		ctx := t.Context()
		// A client chooses its User-Agent; these bytes are not UTF-8 and
		// PostgreSQL rejects NUL in text.
		event := &storage.AuditEvent{
			ActorType: storage.ActorUser, Action: "login", Outcome: storage.OutcomeFailure,
			UserAgent: "agent\xff\xfe\x00" + strings.Repeat("é", 400), IPAddress: "127.0.0.1",
		}
		if err := store.AppendAuditEvent(ctx, event); err != nil {
			t.Fatalf("AppendAuditEvent: %v", err)
		}

		events, err := store.ListAuditEvents(ctx, storage.AuditFilter{Limit: 1})
		if err != nil || len(events) != 1 {
			t.Fatalf("ListAuditEvents = %d events, %v", len(events), err)
		}
		got := events[0].UserAgent
		if !utf8.ValidString(got) {
			t.Errorf("stored User-Agent is not valid UTF-8: %q", got)
		}
		if strings.ContainsRune(got, 0) {
			t.Errorf("stored User-Agent contains NUL: %q", got)
		}
		if !strings.HasPrefix(got, "agent\uFFFD") {
			t.Errorf("stored User-Agent = %.20q, want it to start with agent and a replacement character", got)
		}
		if len(got) > 512 {
			t.Errorf("stored User-Agent is %d bytes, want at most 512", len(got))
		}
		verification, err := store.VerifyAuditChain(ctx)
		if err != nil || verification.BrokenSeq != 0 {
			t.Errorf("VerifyAuditChain = %+v, %v", verification, err)
		}
	})
}
