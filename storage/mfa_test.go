package storage_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/pressly/goose/v3"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

func TestMFASQLite(t *testing.T) {
	runMFAContract(t, func(t *testing.T) *storage.Database {
		return storagetest.NewDatabaseOn(t, storagetest.SQLite)
	})
}

func TestMFAPostgres(t *testing.T) {
	skipWithoutServices(t)
	runMFAContract(t, func(t *testing.T) *storage.Database {
		return storagetest.NewDatabaseOn(t, storagetest.Postgres)
	})
}

// runMFAContract checks the MFA methods of storage.Store on one backend.
// newDatabase returns an empty, migrated database that belongs to t alone.
func runMFAContract(t *testing.T, newDatabase func(t *testing.T) *storage.Database) {
	t.Run("pending enrolment", func(t *testing.T) { testPendingEnrollment(t, newDatabase(t)) })
	t.Run("enrolment of unknown user", func(t *testing.T) { testEnrollmentOfUnknownUser(t, newDatabase(t)) })
	t.Run("confirmation", func(t *testing.T) { testConfirmTOTP(t, newDatabase(t)) })
	t.Run("confirmation without enrolment", func(t *testing.T) { testConfirmWithoutEnrollment(t, newDatabase(t)) })
	t.Run("TOTP replay", func(t *testing.T) { testTOTPReplay(t, newDatabase(t)) })
	t.Run("concurrent TOTP step", func(t *testing.T) { testConcurrentTOTPStep(t, newDatabase(t)) })
	t.Run("backup codes", func(t *testing.T) { testBackupCodes(t, newDatabase(t)) })
	t.Run("concurrent backup code use", func(t *testing.T) { testConcurrentBackupCodeUse(t, newDatabase(t)) })
	t.Run("backup code replacement", func(t *testing.T) { testReplaceBackupCodes(t, newDatabase(t)) })
	t.Run("lock", func(t *testing.T) { testLockMFA(t, newDatabase(t)) })
	t.Run("delete", func(t *testing.T) { testDeleteMFA(t, newDatabase(t)) })
	t.Run("challenges", func(t *testing.T) { testMFAChallenges(t, newDatabase(t)) })
	t.Run("concurrent challenge failures", func(t *testing.T) { testConcurrentChallengeFailures(t, newDatabase(t)) })
	t.Run("challenge expiry", func(t *testing.T) { testMFAChallengeExpiry(t, newDatabase(t)) })
	t.Run("reserved code checks", func(t *testing.T) { testReserveMFACheck(t, newDatabase(t)) })
	t.Run("user deletion cascades", func(t *testing.T) { testMFACascade(t, newDatabase(t)) })
	t.Run("migration down and up", func(t *testing.T) { testMFAMigrationDownUp(t, newDatabase(t)) })
}

// backupCodeHashes returns count distinct 32-byte values that stand in for
// HMAC-SHA256 hashes of backup codes.
func backupCodeHashes(prefix string, count int) [][]byte {
	hashes := make([][]byte, 0, count)
	for i := range count {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s-%d", prefix, i))
		hashes = append(hashes, sum[:])
	}
	return hashes
}

// enrollConfirmed gives userID a confirmed enrolment accepted at step and
// ten backup codes, and returns their hashes.
func enrollConfirmed(t *testing.T, store *storage.Store, userID string, step int64) [][]byte {
	t.Helper()
	ctx := t.Context()
	if err := store.SaveTOTPEnrollment(ctx, userID, []byte("sealed-secret-of-"+userID)); err != nil {
		t.Fatalf("SaveTOTPEnrollment: %v", err)
	}
	hashes := backupCodeHashes(userID, 10)
	if err := store.ConfirmTOTP(ctx, userID, step, hashes); err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	return hashes
}

func countUserRows(t *testing.T, db *storage.Database, table, userID string) int64 {
	t.Helper()
	var count int64
	if err := db.DB.Table(table).Where("user_id = ?", userID).Count(&count).Error; err != nil {
		t.Fatalf("count rows of %s: %v", table, err)
	}
	return count
}

func getMFA(t *testing.T, store *storage.Store, userID string) *storage.MFA {
	t.Helper()
	m, err := store.GetMFA(t.Context(), userID)
	if err != nil {
		t.Fatalf("GetMFA(%s): %v", userID, err)
	}
	return m
}

func testPendingEnrollment(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")

	if _, err := store.GetMFA(ctx, userID1); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("GetMFA before enrolment: %v, want fosite.ErrNotFound", err)
	}

	before := time.Now().UTC().Truncate(time.Second)
	if err := store.SaveTOTPEnrollment(ctx, userID1, []byte("first")); err != nil {
		t.Fatalf("SaveTOTPEnrollment: %v", err)
	}
	m := getMFA(t, store, userID1)
	if m.UserID != userID1 {
		t.Errorf("UserID = %q, want %q", m.UserID, userID1)
	}
	if string(m.TOTPSecret) != "first" {
		t.Errorf("TOTPSecret = %q, want %q", m.TOTPSecret, "first")
	}
	if m.Confirmed {
		t.Error("pending enrolment is confirmed")
	}
	if m.CreatedAt.Before(before) {
		t.Errorf("CreatedAt = %v, before the call at %v", m.CreatedAt, before)
	}
	if !m.ConfirmedAt.IsZero() {
		t.Errorf("ConfirmedAt = %v, want zero", m.ConfirmedAt)
	}
	if m.LastStep != 0 {
		t.Errorf("LastStep = %d, want 0", m.LastStep)
	}
	if !m.LockedUntil.IsZero() {
		t.Errorf("LockedUntil = %v, want zero", m.LockedUntil)
	}
	if m.BackupCodesLeft != 0 {
		t.Errorf("BackupCodesLeft = %d, want 0", m.BackupCodesLeft)
	}

	if err := store.SaveTOTPEnrollment(ctx, userID1, []byte("second")); err != nil {
		t.Fatalf("SaveTOTPEnrollment over a pending enrolment: %v", err)
	}
	if got := getMFA(t, store, userID1).TOTPSecret; string(got) != "second" {
		t.Errorf("TOTPSecret after a new pending enrolment = %q, want %q", got, "second")
	}

	if ok, err := store.AcceptTOTPStep(ctx, userID1, 1); ok || !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("AcceptTOTPStep on a pending enrolment = %v, %v; want false, fosite.ErrNotFound", ok, err)
	}
	if err := store.SaveTOTPEnrollment(ctx, userID1, nil); err == nil {
		t.Error("SaveTOTPEnrollment without a secret succeeded")
	}
}

func testEnrollmentOfUnknownUser(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)

	if err := store.SaveTOTPEnrollment(ctx, userID2, []byte("secret")); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("SaveTOTPEnrollment for an unknown user: %v, want fosite.ErrNotFound", err)
	}
	if _, err := store.GetMFA(ctx, userID2); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetMFA for an unknown user: %v, want fosite.ErrNotFound", err)
	}
	if _, err := store.GetMFA(ctx, "not-a-uuid"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetMFA for a malformed user id: %v, want fosite.ErrNotFound", err)
	}
}

func testConfirmTOTP(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")

	if err := store.SaveTOTPEnrollment(ctx, userID1, []byte("secret")); err != nil {
		t.Fatalf("SaveTOTPEnrollment: %v", err)
	}
	before := time.Now().UTC().Truncate(time.Second)
	if err := store.ConfirmTOTP(ctx, userID1, 100, backupCodeHashes("first", 10)); err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}

	m := getMFA(t, store, userID1)
	if !m.Confirmed {
		t.Error("enrolment is not confirmed")
	}
	if m.ConfirmedAt.Before(before) {
		t.Errorf("ConfirmedAt = %v, before the call at %v", m.ConfirmedAt, before)
	}
	if m.LastStep != 100 {
		t.Errorf("LastStep = %d, want 100", m.LastStep)
	}
	if m.BackupCodesLeft != 10 {
		t.Errorf("BackupCodesLeft = %d, want 10", m.BackupCodesLeft)
	}

	err := store.ConfirmTOTP(ctx, userID1, 101, backupCodeHashes("second", 10))
	if !errors.Is(err, storage.ErrConflict) {
		t.Errorf("second ConfirmTOTP: %v, want storage.ErrConflict", err)
	}
	if got := getMFA(t, store, userID1).LastStep; got != 100 {
		t.Errorf("LastStep after a rejected confirmation = %d, want 100", got)
	}
	if ok, err := store.UseBackupCode(ctx, userID1, backupCodeHashes("second", 1)[0]); ok || err != nil {
		t.Errorf("backup code of a rejected confirmation: UseBackupCode = %v, %v; want false, nil", ok, err)
	}

	err = store.SaveTOTPEnrollment(ctx, userID1, []byte("replacement"))
	if !errors.Is(err, storage.ErrConflict) {
		t.Errorf("SaveTOTPEnrollment over a confirmed enrolment: %v, want storage.ErrConflict", err)
	}
	m = getMFA(t, store, userID1)
	if string(m.TOTPSecret) != "secret" {
		t.Errorf("TOTPSecret after a rejected enrolment = %q, want %q", m.TOTPSecret, "secret")
	}
	if !m.Confirmed {
		t.Error("a rejected enrolment reset the confirmation")
	}

	if err := store.ConfirmTOTP(ctx, userID1, 102, [][]byte{nil}); err == nil {
		t.Error("ConfirmTOTP with an empty backup code hash succeeded")
	}
}

func testConfirmWithoutEnrollment(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")

	err := store.ConfirmTOTP(ctx, userID1, 100, backupCodeHashes("codes", 10))
	if !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("ConfirmTOTP without an enrolment: %v, want fosite.ErrNotFound", err)
	}
	if count := countUserRows(t, db, "backup_codes", userID1); count != 0 {
		t.Errorf("a failed confirmation stored %d backup codes", count)
	}

	err = store.ConfirmTOTP(ctx, userID2, 100, backupCodeHashes("codes", 10))
	if !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("ConfirmTOTP for an unknown user: %v, want fosite.ErrNotFound", err)
	}
}

func testTOTPReplay(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	enrollConfirmed(t, store, userID1, 100)

	steps := []struct {
		name string
		step int64
		want bool
	}{
		{"step of the confirmation", 100, false},
		{"next step", 101, true},
		{"same step again", 101, false},
		{"earlier step", 99, false},
		{"step after a gap", 105, true},
		{"step skipped before", 103, false},
	}
	for _, s := range steps {
		ok, err := store.AcceptTOTPStep(ctx, userID1, s.step)
		if err != nil {
			t.Fatalf("AcceptTOTPStep(%d), %s: %v", s.step, s.name, err)
		}
		if ok != s.want {
			t.Errorf("AcceptTOTPStep(%d), %s = %v, want %v", s.step, s.name, ok, s.want)
		}
	}
	if got := getMFA(t, store, userID1).LastStep; got != 105 {
		t.Errorf("LastStep = %d, want 105", got)
	}

	if ok, err := store.AcceptTOTPStep(ctx, userID2, 200); ok || !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("AcceptTOTPStep for a user without enrolment = %v, %v; want false, fosite.ErrNotFound", ok, err)
	}
}

func testConcurrentTOTPStep(t *testing.T, db *storage.Database) {
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	enrollConfirmed(t, store, userID1, 100)

	accepted := runConcurrently(t, 20, func() (bool, error) {
		return store.AcceptTOTPStep(t.Context(), userID1, 101)
	})
	if accepted != 1 {
		t.Errorf("%d of 20 concurrent AcceptTOTPStep calls with one step succeeded, want 1", accepted)
	}
}

// runConcurrently calls fn from n goroutines at once and returns how many
// calls returned true. An error fails the test.
func runConcurrently(t *testing.T, n int, fn func() (bool, error)) int {
	t.Helper()
	var (
		wg        sync.WaitGroup
		start     = make(chan struct{})
		mu        sync.Mutex
		successes int
		errs      []error
	)
	for range n {
		wg.Go(func() {
			<-start
			ok, err := fn()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				successes++
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
	return successes
}

func testBackupCodes(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	createUser(t, store, userID2, "bob")
	hashes := enrollConfirmed(t, store, userID1, 100)
	enrollConfirmed(t, store, userID2, 100)

	if ok, err := store.UseBackupCode(ctx, userID1, hashes[3]); !ok || err != nil {
		t.Fatalf("first UseBackupCode = %v, %v; want true, nil", ok, err)
	}
	if ok, err := store.UseBackupCode(ctx, userID1, hashes[3]); ok || err != nil {
		t.Errorf("second UseBackupCode of one code = %v, %v; want false, nil", ok, err)
	}
	if got := getMFA(t, store, userID1).BackupCodesLeft; got != 9 {
		t.Errorf("BackupCodesLeft after one use = %d, want 9", got)
	}

	if ok, err := store.UseBackupCode(ctx, userID2, hashes[4]); ok || err != nil {
		t.Errorf("UseBackupCode with another user's code = %v, %v; want false, nil", ok, err)
	}
	if ok, err := store.UseBackupCode(ctx, userID1, backupCodeHashes("unknown", 1)[0]); ok || err != nil {
		t.Errorf("UseBackupCode with an unknown code = %v, %v; want false, nil", ok, err)
	}
	if ok, err := store.UseBackupCode(ctx, userID1, nil); ok || err != nil {
		t.Errorf("UseBackupCode with an empty hash = %v, %v; want false, nil", ok, err)
	}
	if ok, err := store.UseBackupCode(ctx, userID1, hashes[4][:16]); ok || err != nil {
		t.Errorf("UseBackupCode with a truncated hash = %v, %v; want false, nil", ok, err)
	}

	for i, hash := range hashes {
		if i == 3 {
			continue
		}
		if ok, err := store.UseBackupCode(ctx, userID1, hash); !ok || err != nil {
			t.Errorf("UseBackupCode of code %d = %v, %v; want true, nil", i, ok, err)
		}
	}
	if got := getMFA(t, store, userID1).BackupCodesLeft; got != 0 {
		t.Errorf("BackupCodesLeft after using every code = %d, want 0", got)
	}
	if got := getMFA(t, store, userID2).BackupCodesLeft; got != 10 {
		t.Errorf("BackupCodesLeft of the other user = %d, want 10", got)
	}
}

func testConcurrentBackupCodeUse(t *testing.T, db *storage.Database) {
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	hashes := enrollConfirmed(t, store, userID1, 100)

	// Each code is raced separately, so that a lost race shows in more
	// than one round.
	for i, hash := range hashes {
		used := runConcurrently(t, 20, func() (bool, error) {
			return store.UseBackupCode(t.Context(), userID1, hash)
		})
		if used != 1 {
			t.Errorf("%d of 20 concurrent uses of backup code %d succeeded, want 1", used, i)
		}
	}
	if got := getMFA(t, store, userID1).BackupCodesLeft; got != 0 {
		t.Errorf("BackupCodesLeft = %d, want 0", got)
	}
}

func testReplaceBackupCodes(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	createUser(t, store, userID2, "bob")
	old := enrollConfirmed(t, store, userID1, 100)
	if ok, err := store.UseBackupCode(ctx, userID1, old[0]); !ok || err != nil {
		t.Fatalf("UseBackupCode = %v, %v; want true, nil", ok, err)
	}

	replacement := backupCodeHashes("replacement", 10)
	if err := store.ReplaceBackupCodes(ctx, userID1, replacement); err != nil {
		t.Fatalf("ReplaceBackupCodes: %v", err)
	}
	if got := getMFA(t, store, userID1).BackupCodesLeft; got != 10 {
		t.Errorf("BackupCodesLeft after replacement = %d, want 10", got)
	}
	if count := countUserRows(t, db, "backup_codes", userID1); count != 10 {
		t.Errorf("%d backup code rows after replacement, want 10", count)
	}
	for i, hash := range old {
		if ok, err := store.UseBackupCode(ctx, userID1, hash); ok || err != nil {
			t.Errorf("replaced code %d: UseBackupCode = %v, %v; want false, nil", i, ok, err)
		}
	}
	if ok, err := store.UseBackupCode(ctx, userID1, replacement[5]); !ok || err != nil {
		t.Errorf("new code: UseBackupCode = %v, %v; want true, nil", ok, err)
	}

	if err := store.ReplaceBackupCodes(ctx, userID2, replacement); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("ReplaceBackupCodes without an enrolment: %v, want fosite.ErrNotFound", err)
	}
	if err := store.SaveTOTPEnrollment(ctx, userID2, []byte("pending")); err != nil {
		t.Fatal(err)
	}
	if err := store.ReplaceBackupCodes(ctx, userID2, replacement); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("ReplaceBackupCodes with a pending enrolment: %v, want fosite.ErrNotFound", err)
	}
	if count := countUserRows(t, db, "backup_codes", userID2); count != 0 {
		t.Errorf("a rejected replacement stored %d backup codes", count)
	}
	if err := store.ReplaceBackupCodes(ctx, userID1, [][]byte{{}}); err == nil {
		t.Error("ReplaceBackupCodes with an empty hash succeeded")
	}
}

func testLockMFA(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	if err := store.SaveTOTPEnrollment(ctx, userID1, []byte("pending")); err != nil {
		t.Fatal(err)
	}

	until := time.Now().UTC().Add(15 * time.Minute).Truncate(time.Second)
	if err := store.LockMFA(ctx, userID1, until); err != nil {
		t.Fatalf("LockMFA: %v", err)
	}
	if got := getMFA(t, store, userID1).LockedUntil; !got.Equal(until) {
		t.Errorf("LockedUntil = %v, want %v", got, until)
	}

	if err := store.SaveTOTPEnrollment(ctx, userID1, []byte("another")); err != nil {
		t.Fatal(err)
	}
	if got := getMFA(t, store, userID1).LockedUntil; !got.Equal(until) {
		t.Errorf("LockedUntil after a new pending enrolment = %v, want %v", got, until)
	}

	if err := store.LockMFA(ctx, userID1, time.Time{}); err != nil {
		t.Fatalf("LockMFA with a zero time: %v", err)
	}
	if got := getMFA(t, store, userID1).LockedUntil; !got.IsZero() {
		t.Errorf("LockedUntil after unlocking = %v, want zero", got)
	}

	if err := store.LockMFA(ctx, userID2, until); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("LockMFA without an enrolment: %v, want fosite.ErrNotFound", err)
	}
}

func testDeleteMFA(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	createUser(t, store, userID2, "bob")
	enrollConfirmed(t, store, userID1, 100)
	enrollConfirmed(t, store, userID2, 100)
	expiresAt := time.Now().Add(5 * time.Minute)
	if err := store.CreateMFAChallenge(ctx, "challenge-alice", userID1, expiresAt); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateMFAChallenge(ctx, "challenge-bob", userID2, expiresAt); err != nil {
		t.Fatal(err)
	}

	if err := store.DeleteMFA(ctx, userID1); err != nil {
		t.Fatalf("DeleteMFA: %v", err)
	}
	if _, err := store.GetMFA(ctx, userID1); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetMFA after DeleteMFA: %v, want fosite.ErrNotFound", err)
	}
	if count := countUserRows(t, db, "backup_codes", userID1); count != 0 {
		t.Errorf("%d backup codes left after DeleteMFA", count)
	}
	if _, _, err := store.GetMFAChallenge(ctx, "challenge-alice"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetMFAChallenge after DeleteMFA: %v, want fosite.ErrNotFound", err)
	}

	if m := getMFA(t, store, userID2); m.BackupCodesLeft != 10 {
		t.Errorf("the other user's BackupCodesLeft = %d, want 10", m.BackupCodesLeft)
	}
	if _, _, err := store.GetMFAChallenge(ctx, "challenge-bob"); err != nil {
		t.Errorf("the other user's challenge: %v", err)
	}

	if err := store.DeleteMFA(ctx, userID1); err != nil {
		t.Errorf("DeleteMFA without an enrolment: %v, want nil", err)
	}
	if err := store.SaveTOTPEnrollment(ctx, userID1, []byte("again")); err != nil {
		t.Errorf("SaveTOTPEnrollment after DeleteMFA: %v", err)
	}
}

func testMFAChallenges(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	expiresAt := time.Now().Add(5 * time.Minute)

	if err := store.CreateMFAChallenge(ctx, "challenge-1", userID1, expiresAt); err != nil {
		t.Fatalf("CreateMFAChallenge: %v", err)
	}
	userID, failures, err := store.GetMFAChallenge(ctx, "challenge-1")
	if err != nil {
		t.Fatalf("GetMFAChallenge: %v", err)
	}
	if userID != userID1 {
		t.Errorf("challenge user = %q, want %q", userID, userID1)
	}
	if failures != 0 {
		t.Errorf("failures of a new challenge = %d, want 0", failures)
	}

	for want := 1; want <= 5; want++ {
		got, err := store.RecordMFAChallengeFailure(ctx, "challenge-1")
		if err != nil {
			t.Fatalf("RecordMFAChallengeFailure: %v", err)
		}
		if got != want {
			t.Errorf("RecordMFAChallengeFailure = %d, want %d", got, want)
		}
	}
	if _, failures, err := store.GetMFAChallenge(ctx, "challenge-1"); err != nil || failures != 5 {
		t.Errorf("GetMFAChallenge after five failures = %d, %v; want 5, nil", failures, err)
	}

	err = store.CreateMFAChallenge(ctx, "challenge-1", userID1, expiresAt)
	if !errors.Is(err, storage.ErrConflict) {
		t.Errorf("CreateMFAChallenge with a taken id: %v, want storage.ErrConflict", err)
	}
	err = store.CreateMFAChallenge(ctx, "challenge-2", userID2, expiresAt)
	if !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("CreateMFAChallenge for an unknown user: %v, want fosite.ErrNotFound", err)
	}
	if err := store.CreateMFAChallenge(ctx, "", userID1, expiresAt); err == nil {
		t.Error("CreateMFAChallenge without an id succeeded")
	}
	if err := store.CreateMFAChallenge(ctx, "challenge-3", userID1, time.Time{}); err == nil {
		t.Error("CreateMFAChallenge without an expiry time succeeded")
	}

	if _, _, err := store.GetMFAChallenge(ctx, "missing"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetMFAChallenge of a missing challenge: %v, want fosite.ErrNotFound", err)
	}
	if _, err := store.RecordMFAChallengeFailure(ctx, "missing"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("RecordMFAChallengeFailure of a missing challenge: %v, want fosite.ErrNotFound", err)
	}

	if err := store.DeleteMFAChallenge(ctx, "challenge-1"); err != nil {
		t.Fatalf("DeleteMFAChallenge: %v", err)
	}
	if _, _, err := store.GetMFAChallenge(ctx, "challenge-1"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetMFAChallenge after delete: %v, want fosite.ErrNotFound", err)
	}
	if err := store.DeleteMFAChallenge(ctx, "challenge-1"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("second DeleteMFAChallenge: %v, want fosite.ErrNotFound", err)
	}
}

func testConcurrentChallengeFailures(t *testing.T, db *storage.Database) {
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	if err := store.CreateMFAChallenge(t.Context(), "challenge-1", userID1, time.Now().Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}

	const calls = 20
	var (
		mu     sync.Mutex
		counts []int
	)
	runConcurrently(t, calls, func() (bool, error) {
		count, err := store.RecordMFAChallengeFailure(t.Context(), "challenge-1")
		mu.Lock()
		counts = append(counts, count)
		mu.Unlock()
		return err == nil, err
	})

	slices.Sort(counts)
	for i, count := range counts {
		if count != i+1 {
			t.Fatalf("counts returned by %d concurrent failures = %v, want 1 to %d once each", calls, counts, calls)
		}
	}
	if _, failures, err := store.GetMFAChallenge(t.Context(), "challenge-1"); err != nil || failures != calls {
		t.Errorf("GetMFAChallenge = %d, %v; want %d, nil", failures, err, calls)
	}
}

func testMFAChallengeExpiry(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	now := time.Now().UTC()

	const expiredCount = 3
	for i := range expiredCount {
		if err := store.CreateMFAChallenge(ctx, fmt.Sprintf("expired-%d", i), userID1, now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.CreateMFAChallenge(ctx, "live", userID1, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	if _, _, err := store.GetMFAChallenge(ctx, "expired-0"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetMFAChallenge of an expired challenge: %v, want fosite.ErrNotFound", err)
	}
	if _, err := store.RecordMFAChallengeFailure(ctx, "expired-0"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("RecordMFAChallengeFailure of an expired challenge: %v, want fosite.ErrNotFound", err)
	}

	deleted, err := store.DeleteExpired(ctx, now, 2)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if deleted["mfa_challenges"] != expiredCount {
		t.Errorf("DeleteExpired removed %d challenges, want %d", deleted["mfa_challenges"], expiredCount)
	}
	if count := countUserRows(t, db, "mfa_challenges", userID1); count != 1 {
		t.Errorf("%d challenges left after DeleteExpired, want 1", count)
	}
	if _, _, err := store.GetMFAChallenge(ctx, "live"); err != nil {
		t.Errorf("live challenge after DeleteExpired: %v", err)
	}
}

func testMFACascade(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	enrollConfirmed(t, store, userID1, 100)
	if err := store.CreateMFAChallenge(ctx, "challenge-1", userID1, time.Now().Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}

	if err := store.DeleteUser(ctx, userID1); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	for _, table := range []string{"user_mfa", "backup_codes", "mfa_challenges"} {
		if count := countUserRows(t, db, table, userID1); count != 0 {
			t.Errorf("%d rows of %s left after the user was deleted", count, table)
		}
	}
}

// testMFAMigrationDownUp rolls the schema back to before the MFA tables and
// applies it again.
func testMFAMigrationDownUp(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	const beforeMFA = 3
	sqlDB, err := db.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	dialect := goose.DialectSQLite3
	if db.Dialect == "postgres" {
		dialect = goose.DialectPostgres
	}
	provider, err := goose.NewProvider(dialect, sqlDB, os.DirFS("../migrations/"+db.Dialect))
	if err != nil {
		t.Fatalf("create goose provider: %v", err)
	}

	if _, err := provider.DownTo(ctx, beforeMFA); err != nil {
		t.Fatalf("migrate down to version %d: %v", beforeMFA, err)
	}
	if version, err := provider.GetDBVersion(ctx); err != nil || version != beforeMFA {
		t.Fatalf("version after migrating down = %d, %v; want %d", version, err, beforeMFA)
	}
	for _, table := range []string{"user_mfa", "backup_codes", "mfa_challenges"} {
		if err := db.DB.Exec("SELECT 1 FROM " + table).Error; err == nil {
			t.Errorf("table %s exists after migrating down", table)
		}
	}

	if _, err := provider.Up(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	status, err := db.SchemaStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !status.UpToDate() {
		t.Errorf("schema status after migrating up again = %+v", status)
	}

	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	enrollConfirmed(t, store, userID1, 100)
	if m := getMFA(t, store, userID1); m.BackupCodesLeft != 10 {
		t.Errorf("BackupCodesLeft after migrating up again = %d, want 10", m.BackupCodesLeft)
	}
}

func testReserveMFACheck(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	createUser(t, store, userID1, "alice")
	enrollConfirmed(t, store, userID1, 100)
	now := time.Now()

	// Twenty checks at once: exactly five are reserved.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var reserved []int
	locked := 0
	for range 20 {
		wg.Go(func() {
			count, err := store.ReserveMFACheck(ctx, userID1, 5, now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				reserved = append(reserved, count)
			case errors.Is(err, storage.ErrMFALocked):
				locked++
			default:
				t.Errorf("ReserveMFACheck: %v", err)
			}
		})
	}
	wg.Wait()
	slices.Sort(reserved)
	if want := []int{1, 2, 3, 4, 5}; !slices.Equal(reserved, want) {
		t.Errorf("reserved counts = %v, want %v", reserved, want)
	}
	if locked != 15 {
		t.Errorf("%d checks refused, want 15", locked)
	}

	// A success starts the count again.
	if err := store.ResetMFAChecks(ctx, userID1); err != nil {
		t.Fatalf("ResetMFAChecks: %v", err)
	}
	if count, err := store.ReserveMFACheck(ctx, userID1, 5, now); err != nil || count != 1 {
		t.Errorf("ReserveMFACheck after reset = %d, %v; want 1, nil", count, err)
	}

	// A lock refuses checks until it ends, and the count restarts after it.
	until := now.Add(time.Minute)
	if err := store.LockMFA(ctx, userID1, until); err != nil {
		t.Fatalf("LockMFA: %v", err)
	}
	if _, err := store.ReserveMFACheck(ctx, userID1, 5, now); !errors.Is(err, storage.ErrMFALocked) {
		t.Errorf("ReserveMFACheck while locked: %v, want ErrMFALocked", err)
	}
	if count, err := store.ReserveMFACheck(ctx, userID1, 5, until.Add(time.Second)); err != nil || count != 1 {
		t.Errorf("ReserveMFACheck after the lock = %d, %v; want 1, nil", count, err)
	}

	// Open challenges of the user end; another user's stay.
	createUser(t, store, userID2, "bob")
	for id, owner := range map[string]string{"alice-1": userID1, "alice-2": userID1, "bob-1": userID2} {
		if err := store.CreateMFAChallenge(ctx, id, owner, now.Add(time.Minute)); err != nil {
			t.Fatalf("CreateMFAChallenge(%s): %v", id, err)
		}
	}
	if err := store.DeleteUserMFAChallenges(ctx, userID1); err != nil {
		t.Fatalf("DeleteUserMFAChallenges: %v", err)
	}
	for id, want := range map[string]error{"alice-1": fosite.ErrNotFound, "alice-2": fosite.ErrNotFound, "bob-1": nil} {
		if _, _, err := store.GetMFAChallenge(ctx, id); !errors.Is(err, want) {
			t.Errorf("GetMFAChallenge(%s) = %v, want %v", id, err, want)
		}
	}
}
