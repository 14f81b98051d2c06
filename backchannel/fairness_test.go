package backchannel_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/backchannel"
)

// noTimeoutClient returns a client whose timeout no test reaches, so that
// a request to a blocking receiver is never retried however slowly the
// test runs.
func noTimeoutClient() *http.Client {
	return &http.Client{Timeout: 2 * hangTimeout}
}

func TestSlowClientDoesNotDelayOthers(t *testing.T) {
	cases := []struct {
		name                 string
		workers              int
		perClientConcurrency int
	}{
		{"one request per client", 2, 1},
		{"two requests per client", 3, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const slowDeliveries = 20
			slow := newBlockingReceiver(t, slowDeliveries)
			healthy := serveReceiver(t, &receiver{
				statuses: []int{http.StatusOK},
				entered:  make(chan struct{}, 1),
			})
			notifier, logs := startTestNotifier(t, backchannel.Config{
				HTTPClient:           noTimeoutClient(),
				Workers:              tc.workers,
				PerClientConcurrency: tc.perClientConcurrency,
			})

			// Every slow delivery is queued before the healthy one, which a
			// single FIFO queue would hold back until the slow client
			// responds.
			for i := range slowDeliveries {
				notifier.Notify(t.Context(), "user-slow", fmt.Sprintf("session-%d", i+1), []backchannel.Target{
					{ClientID: "client-slow", URI: slow.url()},
				})
			}
			for i := range tc.perClientConcurrency {
				receive(t, slow.entered, fmt.Sprintf("slow delivery %d to reach the receiver", i+1))
			}
			notifier.Notify(t.Context(), "user-healthy", "session-healthy", []backchannel.Target{
				{ClientID: "client-healthy", URI: healthy.url()},
			})
			// The slow receiver responds only after unblock below, so the
			// healthy delivery arrives while every slow request still waits.
			receive(t, healthy.entered, "the healthy client's delivery while the slow client blocks")

			if inFlight := len(slow.received()); inFlight != tc.perClientConcurrency {
				t.Errorf("slow receiver has %d requests in flight, want %d", inFlight, tc.perClientConcurrency)
			}

			slow.unblock()
			waitIdle(t, notifier)

			if requests := len(slow.received()); requests != slowDeliveries {
				t.Errorf("slow receiver got %d requests, want %d", requests, slowDeliveries)
			}
			healthyTokens := healthy.tokens()
			if len(healthyTokens) != 1 {
				t.Fatalf("healthy receiver got %d requests, want 1", len(healthyTokens))
			}
			_, claims := verifyLogoutToken(t, healthyTokens[0])
			if claims["aud"] != "client-healthy" {
				t.Errorf("healthy receiver's aud = %v, want client-healthy", claims["aud"])
			}
			logs.assertNoTokenLogged(t, append(slow.tokens(), healthyTokens...))
		})
	}
}

func TestClientQueueBoundDropsOverflow(t *testing.T) {
	const perClientQueueSize = 3
	slow := newBlockingReceiver(t, 1)
	healthy := serveReceiver(t, &receiver{
		statuses: []int{http.StatusOK},
		entered:  make(chan struct{}, 1),
	})
	signer := newTestSigner()
	notifier, logs := startTestNotifier(t, backchannel.Config{
		HTTPClient:         noTimeoutClient(),
		Signer:             signer,
		Workers:            2,
		PerClientQueueSize: perClientQueueSize,
	})
	notifySlow := func(session int) {
		notifier.Notify(t.Context(), "user-slow", fmt.Sprintf("session-%d", session), []backchannel.Target{
			{ClientID: "client-slow", URI: slow.url()},
		})
	}

	notifySlow(1)
	receive(t, slow.entered, "the first slow delivery to reach the receiver")
	// The delivery for session-1 is in flight and those for session-2 and
	// session-3 are queued. They fill the client's bound of 3, so the
	// deliveries for session-4 and session-5 are dropped.
	for session := 2; session <= 5; session++ {
		notifySlow(session)
	}
	notifier.Notify(t.Context(), "user-healthy", "session-healthy", []backchannel.Target{
		{ClientID: "client-healthy", URI: healthy.url()},
	})
	receive(t, healthy.entered, "the healthy client's delivery while the slow client's queue is full")

	drops := logs.withMessage("backchannel logout dropped: client queue full")
	if len(drops) != 2 {
		t.Fatalf("got %d client queue drop logs, want 2", len(drops))
	}
	for i, record := range drops {
		if record.level != slog.LevelError {
			t.Errorf("drop %d logged at %v, want ERROR", i+1, record.level)
		}
		if record.attrs["client_id"] != "client-slow" {
			t.Errorf("drop log %d has client_id %q, want client-slow", i+1, record.attrs["client_id"])
		}
		if record.attrs["per_client_queue_size"] != strconv.Itoa(perClientQueueSize) {
			t.Errorf("drop log %d has per_client_queue_size %q, want %d", i+1, record.attrs["per_client_queue_size"], perClientQueueSize)
		}
		if record.attrs["dropped_total"] != strconv.Itoa(i+1) {
			t.Errorf("drop log %d has dropped_total %q, want %d", i+1, record.attrs["dropped_total"], i+1)
		}
	}
	if globalDrops := logs.withMessage("backchannel logout dropped: queue full"); len(globalDrops) != 0 {
		t.Errorf("got %d global queue drop logs, want 0", len(globalDrops))
	}

	slow.unblock()
	waitIdle(t, notifier)

	var sessions []string
	for _, token := range slow.tokens() {
		_, claims := verifyLogoutToken(t, token)
		session, _ := claims["sid"].(string)
		sessions = append(sessions, session)
	}
	if want := []string{"session-1", "session-2", "session-3"}; !slices.Equal(sessions, want) {
		t.Errorf("slow receiver got sessions %v, want %v in that order", sessions, want)
	}
	if requests := len(healthy.received()); requests != 1 {
		t.Errorf("healthy receiver got %d requests, want 1", requests)
	}
	// Dropped deliveries are dropped before they are signed.
	if calls := signer.calls.Load(); calls != 4 {
		t.Errorf("signer called %d times, want 4 (3 slow deliveries and 1 healthy)", calls)
	}
	logs.assertNoTokenLogged(t, append(slow.tokens(), healthy.tokens()...))
}

// deliverAndCount notifies target of one ended session, waits until the
// delivery is finished and returns the number of requests rp got for it.
func deliverAndCount(t *testing.T, notifier *backchannel.Notifier, rp *receiver, target backchannel.Target) int {
	t.Helper()
	before := len(rp.received())
	notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{target})
	waitIdle(t, notifier)
	return len(rp.received()) - before
}

func TestBreakerSkipsRetriesAfterFailures(t *testing.T) {
	const maxAttempts = 3
	// Deliveries 1 and 2 fail after 3 attempts each, delivery 3 after its
	// single attempt, delivery 4 succeeds and delivery 5 fails again.
	failing := newReceiver(t, 503, 503, 503, 503, 503, 503, 503, http.StatusOK, 503)
	other := newReceiver(t, http.StatusServiceUnavailable)
	issuedAt := time.Unix(1_700_000_000, 0)
	notifier, logs := startTestNotifier(t, backchannel.Config{
		MaxAttempts:      maxAttempts,
		BreakerThreshold: 2,
		Now:              func() time.Time { return issuedAt },
	})
	failingTarget := backchannel.Target{ClientID: "client-failing", URI: failing.url()}
	otherTarget := backchannel.Target{ClientID: "client-other", URI: other.url()}

	if attempts := deliverAndCount(t, notifier, failing, failingTarget); attempts != maxAttempts {
		t.Fatalf("first failed delivery made %d attempts, want %d", attempts, maxAttempts)
	}
	if attempts := deliverAndCount(t, notifier, failing, failingTarget); attempts != maxAttempts {
		t.Fatalf("second failed delivery made %d attempts, want %d", attempts, maxAttempts)
	}
	if attempts := deliverAndCount(t, notifier, failing, failingTarget); attempts != 1 {
		t.Fatalf("delivery with the breaker open made %d attempts, want 1", attempts)
	}
	if attempts := deliverAndCount(t, notifier, other, otherTarget); attempts != maxAttempts {
		t.Errorf("other client's failed delivery made %d attempts, want %d", attempts, maxAttempts)
	}
	if attempts := deliverAndCount(t, notifier, failing, failingTarget); attempts != 1 {
		t.Fatalf("successful delivery made %d attempts, want 1", attempts)
	}
	if attempts := deliverAndCount(t, notifier, failing, failingTarget); attempts != maxAttempts {
		t.Errorf("failed delivery after the breaker closed made %d attempts, want %d", attempts, maxAttempts)
	}

	opened := logs.withMessage("backchannel logout circuit breaker opened")
	if len(opened) != 1 {
		t.Fatalf("got %d breaker opened logs, want 1", len(opened))
	}
	if opened[0].level != slog.LevelWarn {
		t.Errorf("breaker opened logged at %v, want WARN", opened[0].level)
	}
	if opened[0].attrs["client_id"] != "client-failing" {
		t.Errorf("breaker opened log has client_id %q, want client-failing", opened[0].attrs["client_id"])
	}
	if opened[0].attrs["consecutive_failures"] != "2" {
		t.Errorf("breaker opened log has consecutive_failures %q, want 2", opened[0].attrs["consecutive_failures"])
	}
	if opened[0].attrs["cooldown"] != "1m0s" {
		t.Errorf("breaker opened log has cooldown %q, want the default 1m0s", opened[0].attrs["cooldown"])
	}
	if closed := logs.withMessage("backchannel logout circuit breaker closed"); len(closed) != 1 {
		t.Errorf("got %d breaker closed logs, want 1", len(closed))
	}

	var failingGiveUps []loggedRecord
	for _, record := range logs.withMessage("backchannel logout failed: giving up") {
		if record.attrs["client_id"] == "client-failing" {
			failingGiveUps = append(failingGiveUps, record)
		}
	}
	if len(failingGiveUps) != 4 {
		t.Fatalf("got %d give-up logs for client-failing, want 4", len(failingGiveUps))
	}
	wantBreaker := []string{"", "", "open", ""}
	wantMaxAttempts := []string{"3", "3", "1", "3"}
	for i, record := range failingGiveUps {
		if record.attrs["circuit_breaker"] != wantBreaker[i] {
			t.Errorf("give-up log %d has circuit_breaker %q, want %q", i+1, record.attrs["circuit_breaker"], wantBreaker[i])
		}
		if record.attrs["max_attempts"] != wantMaxAttempts[i] {
			t.Errorf("give-up log %d has max_attempts %q, want %s", i+1, record.attrs["max_attempts"], wantMaxAttempts[i])
		}
	}
	logs.assertNoTokenLogged(t, failing.tokens())
}

func TestBreakerCooldownEnds(t *testing.T) {
	const maxAttempts = 3
	var clock atomic.Int64
	clock.Store(1_700_000_000)
	rp := newReceiver(t, http.StatusServiceUnavailable)
	notifier, logs := startTestNotifier(t, backchannel.Config{
		MaxAttempts:      maxAttempts,
		BreakerThreshold: 1,
		BreakerCooldown:  time.Minute,
		Now:              func() time.Time { return time.Unix(clock.Load(), 0) },
	})
	target := backchannel.Target{ClientID: "client-a", URI: rp.url()}

	// Each step advances the clock by advance seconds and then delivers.
	// A failure while the breaker is open restarts the one-minute
	// cool-down, and the first delivery after it gets every attempt again.
	steps := []struct {
		name         string
		advance      int64
		wantAttempts int
	}{
		{"first failure opens the breaker", 0, maxAttempts},
		{"breaker open", 0, 1},
		{"59 s later, before the cool-down ends", 59, 1},
		{"cool-down restarted by the last failure", 59, 1},
		{"cool-down over", 60, maxAttempts},
		{"breaker open again", 0, 1},
	}
	for _, step := range steps {
		clock.Add(step.advance)
		if attempts := deliverAndCount(t, notifier, rp, target); attempts != step.wantAttempts {
			t.Fatalf("%s: delivery made %d attempts, want %d", step.name, attempts, step.wantAttempts)
		}
	}

	if opened := logs.withMessage("backchannel logout circuit breaker opened"); len(opened) != 2 {
		t.Errorf("got %d breaker opened logs, want 2", len(opened))
	}
}

func TestRejectionLeavesBreakerClosed(t *testing.T) {
	const maxAttempts = 3
	rp := newReceiver(t, http.StatusBadRequest, http.StatusServiceUnavailable)
	notifier, logs := startTestNotifier(t, backchannel.Config{MaxAttempts: maxAttempts, BreakerThreshold: 1})
	target := backchannel.Target{ClientID: "client-a", URI: rp.url()}

	if attempts := deliverAndCount(t, notifier, rp, target); attempts != 1 {
		t.Fatalf("rejected delivery made %d attempts, want 1", attempts)
	}
	if attempts := deliverAndCount(t, notifier, rp, target); attempts != maxAttempts {
		t.Errorf("failed delivery after a rejection made %d attempts, want %d", attempts, maxAttempts)
	}
	if opened := logs.withMessage("backchannel logout circuit breaker opened"); len(opened) != 1 {
		t.Errorf("got %d breaker opened logs, want 1, after the failure and not after the rejection", len(opened))
	}
}
