package userapi

import (
	"testing"
	"time"
)

func TestFailureCounterBlocksAfterLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	counter := newFailureCounter()
	counter.now = func() time.Time { return now }

	for i := range maxPasswordFailures {
		if wait := counter.blocked("u1"); wait != 0 {
			t.Fatalf("blocked after %d failures, limit is %d", i, maxPasswordFailures)
		}
		counter.fail("u1")
	}
	if wait := counter.blocked("u1"); wait <= 0 {
		t.Error("not blocked after reaching the limit")
	}
	if wait := counter.blocked("u2"); wait != 0 {
		t.Error("another user is blocked too")
	}

	now = now.Add(passwordFailureWindow)
	if wait := counter.blocked("u1"); wait != 0 {
		t.Errorf("still blocked %s after the window ended", wait)
	}

	counter.fail("u1")
	counter.reset("u1")
	if _, ok := counter.entries["u1"]; ok {
		t.Error("reset kept the user's failures")
	}
}
