package backchannel_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/backchannel"
)

const logoutEvent = "http://schemas.openid.net/event/backchannel-logout"

func TestLogoutTokenClaims(t *testing.T) {
	issuedAt := time.Unix(1_700_000_000, 0)
	cases := []struct {
		name      string
		algorithm string
		wantAlg   string
		wantKeyID string
	}{
		{"empty algorithm signs with RS256", "", "RS256", rsaKeyID},
		{"ES256 client", "ES256", "ES256", ecKeyID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rp := newReceiver(t, http.StatusOK)
			notifier, logs := startTestNotifier(t, backchannel.Config{Now: func() time.Time { return issuedAt }})

			notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{
				{ClientID: "client-a", URI: rp.url(), Algorithm: tc.algorithm},
			})
			waitIdle(t, notifier)

			requests := rp.received()
			if len(requests) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(requests))
			}
			request := requests[0]
			if request.method != http.MethodPost {
				t.Errorf("method = %s, want POST", request.method)
			}
			if request.contentType != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q, want application/x-www-form-urlencoded", request.contentType)
			}
			if request.cacheControl != "" {
				t.Errorf("Cache-Control = %q, want none on a request", request.cacheControl)
			}
			if keys := slices.Sorted(maps.Keys(request.form)); !slices.Equal(keys, []string{"logout_token"}) {
				t.Errorf("form parameters = %v, want only logout_token", keys)
			}

			header, claims := verifyLogoutToken(t, request.token)
			if header.Algorithm != tc.wantAlg {
				t.Errorf("alg = %q, want %q", header.Algorithm, tc.wantAlg)
			}
			if header.KeyID != tc.wantKeyID {
				t.Errorf("kid = %q, want %q", header.KeyID, tc.wantKeyID)
			}
			if typ := header.ExtraHeaders["typ"]; typ != "logout+jwt" {
				t.Errorf("typ = %v, want logout+jwt", typ)
			}

			wantNames := []string{"aud", "events", "exp", "iat", "iss", "jti", "sid", "sub"}
			if names := slices.Sorted(maps.Keys(claims)); !slices.Equal(names, wantNames) {
				t.Errorf("claim names = %v, want %v", names, wantNames)
			}
			if _, ok := claims["nonce"]; ok {
				t.Error("logout token has a nonce claim")
			}
			if claims["iss"] != testIssuer {
				t.Errorf("iss = %v, want %s", claims["iss"], testIssuer)
			}
			if audience, ok := claims["aud"].(string); !ok || audience != "client-a" {
				t.Errorf("aud = %#v, want the string client-a", claims["aud"])
			}
			if claims["sub"] != "user-1" {
				t.Errorf("sub = %v, want user-1", claims["sub"])
			}
			if claims["sid"] != "session-1" {
				t.Errorf("sid = %v, want session-1", claims["sid"])
			}
			if claims["iat"] != json.Number("1700000000") {
				t.Errorf("iat = %v, want the integer 1700000000", claims["iat"])
			}
			if claims["exp"] != json.Number("1700000120") {
				t.Errorf("exp = %v, want the integer 1700000120 (iat + 120 s)", claims["exp"])
			}
			wantEvents := map[string]any{logoutEvent: map[string]any{}}
			if !reflect.DeepEqual(claims["events"], wantEvents) {
				t.Errorf("events = %#v, want %#v", claims["events"], wantEvents)
			}

			jti, _ := claims["jti"].(string)
			decoded, err := base64.RawURLEncoding.DecodeString(jti)
			if err != nil {
				t.Errorf("jti %q is not unpadded base64url: %v", jti, err)
			}
			if len(decoded) < 16 {
				t.Errorf("jti has %d bytes, want at least 16 (128 bits)", len(decoded))
			}

			logs.assertNoTokenLogged(t, rp.tokens())
		})
	}
}

func TestLogoutTokenWithoutSessionID(t *testing.T) {
	rp := newReceiver(t, http.StatusOK)
	notifier, _ := startTestNotifier(t, backchannel.Config{})

	notifier.Notify(t.Context(), "user-1", "", []backchannel.Target{{ClientID: "client-a", URI: rp.url()}})
	waitIdle(t, notifier)

	tokens := rp.tokens()
	if len(tokens) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(tokens))
	}
	_, claims := verifyLogoutToken(t, tokens[0])
	if _, ok := claims["sid"]; ok {
		t.Errorf("sid = %v, want no sid claim", claims["sid"])
	}
	if claims["sub"] != "user-1" {
		t.Errorf("sub = %v, want user-1", claims["sub"])
	}
}

func TestNotifyDeliversToEveryTarget(t *testing.T) {
	first := newReceiver(t, http.StatusOK)
	second := newReceiver(t, http.StatusOK)
	notifier, logs := startTestNotifier(t, backchannel.Config{})

	notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{
		{ClientID: "client-a", URI: first.url()},
		{ClientID: "client-b", URI: second.url()},
	})
	waitIdle(t, notifier)

	firstTokens, secondTokens := first.tokens(), second.tokens()
	if len(firstTokens) != 1 {
		t.Fatalf("first receiver got %d requests, want 1", len(firstTokens))
	}
	if len(secondTokens) != 1 {
		t.Fatalf("second receiver got %d requests, want 1", len(secondTokens))
	}
	_, firstClaims := verifyLogoutToken(t, firstTokens[0])
	_, secondClaims := verifyLogoutToken(t, secondTokens[0])
	if firstClaims["aud"] != "client-a" {
		t.Errorf("first receiver's aud = %v, want client-a", firstClaims["aud"])
	}
	if secondClaims["aud"] != "client-b" {
		t.Errorf("second receiver's aud = %v, want client-b", secondClaims["aud"])
	}
	if firstClaims["jti"] == secondClaims["jti"] {
		t.Errorf("both tokens have jti %v, want one per delivery", firstClaims["jti"])
	}

	logs.assertNoTokenLogged(t, append(firstTokens, secondTokens...))
}

func TestDeliveryAttempts(t *testing.T) {
	const maxAttempts = 4
	cases := []struct {
		name         string
		statuses     []int
		wantAttempts int
	}{
		{"200 delivers at once", []int{http.StatusOK}, 1},
		{"204 delivers at once", []int{http.StatusNoContent}, 1},
		{"503 twice then 200", []int{503, 503, 200}, 3},
		{"408 is retried", []int{http.StatusRequestTimeout, http.StatusOK}, 2},
		{"429 is retried", []int{http.StatusTooManyRequests, http.StatusOK}, 2},
		{"closed connection is retried", []int{closeConnection, http.StatusOK}, 2},
		{"400 gives up at once", []int{http.StatusBadRequest}, 1},
		{"401 gives up at once", []int{http.StatusUnauthorized}, 1},
		{"404 gives up at once", []int{http.StatusNotFound}, 1},
		{"500 always stops at MaxAttempts", []int{http.StatusInternalServerError}, maxAttempts},
		{"closed connection always stops at MaxAttempts", []int{closeConnection}, maxAttempts},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rp := newReceiver(t, tc.statuses...)
			notifier, logs := startTestNotifier(t, backchannel.Config{MaxAttempts: maxAttempts})

			notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{{ClientID: "client-a", URI: rp.url()}})
			waitIdle(t, notifier)

			tokens := rp.tokens()
			if len(tokens) != tc.wantAttempts {
				t.Fatalf("receiver got %d attempts, want %d", len(tokens), tc.wantAttempts)
			}
			for i, token := range tokens {
				if token != tokens[0] {
					t.Errorf("attempt %d sent another token than attempt 1, want the same token on retries", i+1)
				}
			}
			logs.assertNoTokenLogged(t, tokens)
		})
	}
}

func TestRejectedDeliveryLogsWarning(t *testing.T) {
	rp := serveReceiver(t, &receiver{
		statuses: []int{http.StatusBadRequest},
		body:     `{"error":"invalid_request","error_description":"unknown sid"}`,
	})
	notifier, logs := startTestNotifier(t, backchannel.Config{})

	notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{{ClientID: "client-a", URI: rp.url()}})
	waitIdle(t, notifier)

	records := logs.withMessage("backchannel logout rejected by client")
	if len(records) != 1 {
		t.Fatalf("got %d rejection logs, want 1", len(records))
	}
	record := records[0]
	if record.level != slog.LevelWarn {
		t.Errorf("rejection logged at %v, want WARN", record.level)
	}
	if record.attrs["client_id"] != "client-a" {
		t.Errorf("client_id = %q, want client-a", record.attrs["client_id"])
	}
	if record.attrs["status"] != "400" {
		t.Errorf("status = %q, want 400", record.attrs["status"])
	}
	if record.attrs["attempt"] != "1" {
		t.Errorf("attempt = %q, want 1", record.attrs["attempt"])
	}
	if want := mustParseURL(t, rp.url()).Host; record.attrs["host"] != want {
		t.Errorf("host = %q, want %q", record.attrs["host"], want)
	}
	if record.attrs["rp_error"] != "invalid_request: unknown sid" {
		t.Errorf("rp_error = %q, want the RP's error and description", record.attrs["rp_error"])
	}
	if errorLogs := logs.atLevel(slog.LevelError); len(errorLogs) != 0 {
		t.Errorf("got error logs %v, want none for a rejection", errorLogs)
	}
	logs.assertNoTokenLogged(t, rp.tokens())
}

func TestGivingUpLogsError(t *testing.T) {
	rp := newReceiver(t, http.StatusServiceUnavailable)
	notifier, logs := startTestNotifier(t, backchannel.Config{MaxAttempts: 3})

	notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{{ClientID: "client-a", URI: rp.url()}})
	waitIdle(t, notifier)

	retries := logs.withMessage("backchannel logout attempt failed: retrying")
	if len(retries) != 2 {
		t.Fatalf("got %d retry logs, want 2", len(retries))
	}
	for i, record := range retries {
		if record.level != slog.LevelWarn {
			t.Errorf("retry %d logged at %v, want WARN", i+1, record.level)
		}
		if record.attrs["attempt"] != strconv.Itoa(i+1) {
			t.Errorf("retry log %d has attempt %q, want %d", i+1, record.attrs["attempt"], i+1)
		}
		if record.attrs["status"] != "503" {
			t.Errorf("retry log %d has status %q, want 503", i+1, record.attrs["status"])
		}
	}
	if retries[0].attrs["retry_in"] != "10ms" || retries[1].attrs["retry_in"] != "20ms" {
		t.Errorf("retry delays = %q, %q, want 10ms, 20ms", retries[0].attrs["retry_in"], retries[1].attrs["retry_in"])
	}

	failures := logs.atLevel(slog.LevelError)
	if len(failures) != 1 {
		t.Fatalf("got %d error logs, want 1", len(failures))
	}
	if failures[0].message != "backchannel logout failed: giving up" {
		t.Errorf("error log = %q, want the give-up message", failures[0].message)
	}
	if failures[0].attrs["attempt"] != "3" {
		t.Errorf("give-up log has attempt %q, want 3", failures[0].attrs["attempt"])
	}
	if failures[0].attrs["client_id"] != "client-a" {
		t.Errorf("give-up log has client_id %q, want client-a", failures[0].attrs["client_id"])
	}
	logs.assertNoTokenLogged(t, rp.tokens())
}

func TestTimeoutIsRetried(t *testing.T) {
	rp := newReceiver(t, stallUntilGone, http.StatusOK)
	// The timeout only has to end the stalled first attempt. It is long
	// enough that the second attempt, which gets a response at once, never
	// reaches it.
	client := &http.Client{Timeout: time.Second}
	notifier, logs := startTestNotifier(t, backchannel.Config{HTTPClient: client})

	notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{{ClientID: "client-a", URI: rp.url()}})
	waitIdle(t, notifier)

	if attempts := len(rp.received()); attempts != 2 {
		t.Fatalf("receiver got %d attempts, want 2", attempts)
	}
	retries := logs.withMessage("backchannel logout attempt failed: retrying")
	if len(retries) != 1 {
		t.Fatalf("got %d retry logs, want 1", len(retries))
	}
	if !strings.Contains(retries[0].attrs["error"], "Client.Timeout") {
		t.Errorf("retry log error = %q, want a client timeout", retries[0].attrs["error"])
	}
	if strings.Contains(retries[0].attrs["error"], rp.url()) {
		t.Errorf("retry log error = %q, want no URI in it", retries[0].attrs["error"])
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	cases := []struct {
		name   string
		client *http.Client
	}{
		{"default client", nil},
		{"caller's client that follows redirects", &http.Client{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			elsewhere := newReceiver(t, http.StatusOK)
			// 307 keeps the method and body, so a client that followed it
			// would post the logout token again.
			redirecting := serveReceiver(t, &receiver{
				statuses: []int{http.StatusTemporaryRedirect},
				redirect: elsewhere.url(),
			})
			notifier, logs := startTestNotifier(t, backchannel.Config{HTTPClient: tc.client})

			notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{{ClientID: "client-a", URI: redirecting.url()}})
			waitIdle(t, notifier)

			if attempts := len(redirecting.received()); attempts != 1 {
				t.Errorf("redirecting receiver got %d attempts, want 1", attempts)
			}
			if requests := len(elsewhere.received()); requests != 0 {
				t.Errorf("redirect target got %d requests, want 0", requests)
			}
			records := logs.withMessage("backchannel logout failed: redirect not followed")
			if len(records) != 1 {
				t.Fatalf("got %d redirect logs, want 1", len(records))
			}
			if records[0].attrs["status"] != "307" {
				t.Errorf("redirect log has status %q, want 307", records[0].attrs["status"])
			}
		})
	}
}

func TestNotifyDoesNotWaitForReceiver(t *testing.T) {
	rp := serveReceiver(t, &receiver{
		statuses: []int{http.StatusOK},
		entered:  make(chan struct{}, 1),
		release:  make(chan struct{}),
	})
	released := false
	t.Cleanup(func() {
		if !released {
			close(rp.release)
		}
	})
	notifier, _ := startTestNotifier(t, backchannel.Config{})

	// The receiver responds only after release is closed, which happens
	// after Notify returned. A Notify that waited for the delivery would
	// never return.
	notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{{ClientID: "client-a", URI: rp.url()}})
	receive(t, rp.entered, "the delivery to reach the receiver")
	close(rp.release)
	released = true
	waitIdle(t, notifier)

	if attempts := len(rp.received()); attempts != 1 {
		t.Errorf("receiver got %d attempts, want 1", attempts)
	}
}

func TestRetryDoesNotHoldWorker(t *testing.T) {
	failing := newReceiver(t, http.StatusServiceUnavailable)
	succeeding := serveReceiver(t, &receiver{
		statuses: []int{http.StatusOK},
		entered:  make(chan struct{}, 1),
	})
	// With one worker and a retry an hour away, the second delivery is
	// sent only if the waiting retry does not hold the worker.
	ctx, stop := context.WithCancel(t.Context())
	notifier, logs := newTestNotifier(t, backchannel.Config{Workers: 1, Backoff: time.Hour})
	notifier.Start(ctx)

	notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{
		{ClientID: "client-failing", URI: failing.url()},
		{ClientID: "client-succeeding", URI: succeeding.url()},
	})
	receive(t, succeeding.entered, "the second delivery")

	// Stopping abandons the waiting retry, and Wait returns.
	stop()
	waitIdle(t, notifier)

	if attempts := len(failing.received()); attempts != 1 {
		t.Errorf("failing receiver got %d attempts, want 1", attempts)
	}
	// The stop log's abandoned count is not checked: the second delivery
	// may still be in flight when stop is called, and is then abandoned too.
	if stopped := logs.withMessage("backchannel logout notifier stopped"); len(stopped) != 1 {
		t.Errorf("got %d stop logs, want 1", len(stopped))
	}
	if errorLogs := logs.atLevel(slog.LevelError); len(errorLogs) != 0 {
		t.Errorf("got error logs %v, want none when a retry is abandoned", errorLogs)
	}
}

func TestFullQueueDropsDelivery(t *testing.T) {
	rp := newReceiver(t, http.StatusOK)
	notifier, logs := newTestNotifier(t, backchannel.Config{QueueSize: 2})

	// No worker runs yet, so a Notify that waited for room in the queue
	// would never return.
	notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{
		{ClientID: "client-1", URI: rp.url()},
		{ClientID: "client-2", URI: rp.url()},
		{ClientID: "client-3", URI: rp.url()},
		{ClientID: "client-4", URI: rp.url()},
	})

	drops := logs.withMessage("backchannel logout dropped: queue full")
	if len(drops) != 2 {
		t.Fatalf("got %d drop logs, want 2", len(drops))
	}
	for i, record := range drops {
		wantClient := "client-" + strconv.Itoa(i+3)
		if record.level != slog.LevelError {
			t.Errorf("drop of %s logged at %v, want ERROR", wantClient, record.level)
		}
		if record.attrs["client_id"] != wantClient {
			t.Errorf("drop log %d has client_id %q, want %s", i+1, record.attrs["client_id"], wantClient)
		}
		if record.attrs["dropped_total"] != strconv.Itoa(i+1) {
			t.Errorf("drop log %d has dropped_total %q, want %d", i+1, record.attrs["dropped_total"], i+1)
		}
	}

	notifier.Start(t.Context())
	waitIdle(t, notifier)

	var audiences []string
	for _, token := range rp.tokens() {
		_, claims := verifyLogoutToken(t, token)
		audience, _ := claims["aud"].(string)
		audiences = append(audiences, audience)
	}
	slices.Sort(audiences)
	if !slices.Equal(audiences, []string{"client-1", "client-2"}) {
		t.Errorf("delivered to %v, want client-1 and client-2", audiences)
	}
	logs.assertNoTokenLogged(t, rp.tokens())
}

func TestInvalidTargetIsSkipped(t *testing.T) {
	rp := newReceiver(t, http.StatusOK)
	cases := []struct {
		name   string
		target backchannel.Target
	}{
		{"ftp scheme", backchannel.Target{ClientID: "client-a", URI: "ftp://127.0.0.1/logout"}},
		{"javascript scheme", backchannel.Target{ClientID: "client-a", URI: "javascript:alert(1)"}},
		{"relative URI", backchannel.Target{ClientID: "client-a", URI: "/backchannel-logout"}},
		{"no host", backchannel.Target{ClientID: "client-a", URI: "http:///backchannel-logout"}},
		{"unparsable URI", backchannel.Target{ClientID: "client-a", URI: "http://[::1"}},
		{"empty URI", backchannel.Target{ClientID: "client-a"}},
		{"empty client_id", backchannel.Target{URI: rp.url()}},
		{"algorithm none", backchannel.Target{ClientID: "client-a", URI: rp.url(), Algorithm: "none"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			signer := newTestSigner()
			notifier, logs := startTestNotifier(t, backchannel.Config{Signer: signer})

			notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{tc.target})
			waitIdle(t, notifier)

			if calls := signer.calls.Load(); calls != 0 {
				t.Errorf("signer called %d times, want 0", calls)
			}
			records := logs.withMessage("backchannel logout skipped: invalid target")
			if len(records) != 1 {
				t.Fatalf("got %d skip logs, want 1", len(records))
			}
			if records[0].level != slog.LevelWarn {
				t.Errorf("skip logged at %v, want WARN", records[0].level)
			}
			if records[0].attrs["client_id"] != tc.target.ClientID {
				t.Errorf("skip log has client_id %q, want %q", records[0].attrs["client_id"], tc.target.ClientID)
			}
		})
	}
	if requests := len(rp.received()); requests != 0 {
		t.Errorf("receiver got %d requests, want 0", requests)
	}
}

func TestEmptySubjectIsSkipped(t *testing.T) {
	rp := newReceiver(t, http.StatusOK)
	signer := newTestSigner()
	notifier, logs := startTestNotifier(t, backchannel.Config{Signer: signer})

	notifier.Notify(t.Context(), "", "session-1", []backchannel.Target{{ClientID: "client-a", URI: rp.url()}})
	waitIdle(t, notifier)

	if calls := signer.calls.Load(); calls != 0 {
		t.Errorf("signer called %d times, want 0", calls)
	}
	if requests := len(rp.received()); requests != 0 {
		t.Errorf("receiver got %d requests, want 0", requests)
	}
	if records := logs.withMessage("backchannel logout skipped: subject is empty"); len(records) != 1 {
		t.Errorf("got %d empty-subject logs, want 1", len(records))
	}
}

func TestSigningFailureIsLogged(t *testing.T) {
	rp := newReceiver(t, http.StatusOK)
	signer := newTestSigner()
	signer.err = errors.New("no active key")
	notifier, logs := startTestNotifier(t, backchannel.Config{Signer: signer})

	notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{{ClientID: "client-a", URI: rp.url()}})
	waitIdle(t, notifier)

	if requests := len(rp.received()); requests != 0 {
		t.Errorf("receiver got %d requests, want 0", requests)
	}
	records := logs.withMessage("backchannel logout token signing failed")
	if len(records) != 1 {
		t.Fatalf("got %d signing failure logs, want 1", len(records))
	}
	if records[0].level != slog.LevelError {
		t.Errorf("signing failure logged at %v, want ERROR", records[0].level)
	}
	if !strings.Contains(records[0].attrs["error"], "no active key") {
		t.Errorf("signing failure log has error %q, want the signer's error", records[0].attrs["error"])
	}
}

func TestOldTokenIsSignedAgain(t *testing.T) {
	const notifiedAt = 1_700_000_000
	cases := []struct {
		name       string
		queuedFor  time.Duration
		wantIat    int64
		wantSigned int64
	}{
		{"token younger than a minute is kept", 59 * time.Second, notifiedAt, 1},
		{"token a minute old is signed again", 90 * time.Second, notifiedAt + 90, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var clock atomic.Int64
			clock.Store(notifiedAt)
			now := func() time.Time { return time.Unix(clock.Load(), 0) }
			rp := newReceiver(t, http.StatusOK)
			signer := newTestSigner()
			notifier, _ := newTestNotifier(t, backchannel.Config{Signer: signer, Now: now})

			notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{{ClientID: "client-a", URI: rp.url()}})
			clock.Add(int64(tc.queuedFor / time.Second))
			notifier.Start(t.Context())
			waitIdle(t, notifier)

			tokens := rp.tokens()
			if len(tokens) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(tokens))
			}
			_, claims := verifyLogoutToken(t, tokens[0])
			if want := json.Number(strconv.FormatInt(tc.wantIat, 10)); claims["iat"] != want {
				t.Errorf("iat = %v, want %v", claims["iat"], want)
			}
			if want := json.Number(strconv.FormatInt(tc.wantIat+120, 10)); claims["exp"] != want {
				t.Errorf("exp = %v, want %v", claims["exp"], want)
			}
			if calls := signer.calls.Load(); calls != tc.wantSigned {
				t.Errorf("signer called %d times, want %d", calls, tc.wantSigned)
			}
		})
	}
}

func TestWaitReturnsContextError(t *testing.T) {
	rp := newReceiver(t, http.StatusOK)
	notifier, _ := newTestNotifier(t, backchannel.Config{})
	notifier.Notify(t.Context(), "user-1", "session-1", []backchannel.Target{{ClientID: "client-a", URI: rp.url()}})

	// No worker runs, so the delivery stays queued.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := notifier.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	signer := newTestSigner()
	cases := []struct {
		name    string
		cfg     backchannel.Config
		wantErr string
	}{
		{"missing issuer", backchannel.Config{Signer: signer}, "issuer is missing"},
		{"missing signer", backchannel.Config{Issuer: testIssuer}, "signer is missing"},
		{"negative workers", backchannel.Config{Issuer: testIssuer, Signer: signer, Workers: -1}, "workers is -1"},
		{"negative queue size", backchannel.Config{Issuer: testIssuer, Signer: signer, QueueSize: -1}, "queue size is -1"},
		{"negative max attempts", backchannel.Config{Issuer: testIssuer, Signer: signer, MaxAttempts: -1}, "max attempts is -1"},
		{"negative backoff", backchannel.Config{Issuer: testIssuer, Signer: signer, Backoff: -time.Second}, "backoff is -1s"},
		{"negative per-client concurrency", backchannel.Config{Issuer: testIssuer, Signer: signer, PerClientConcurrency: -1}, "per-client concurrency is -1"},
		{"negative per-client queue size", backchannel.Config{Issuer: testIssuer, Signer: signer, PerClientQueueSize: -1}, "per-client queue size is -1"},
		{"negative breaker threshold", backchannel.Config{Issuer: testIssuer, Signer: signer, BreakerThreshold: -1}, "breaker threshold is -1"},
		{"negative breaker cooldown", backchannel.Config{Issuer: testIssuer, Signer: signer, BreakerCooldown: -time.Minute}, "breaker cooldown is -1m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := backchannel.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}

	t.Run("every problem reported at once", func(t *testing.T) {
		_, err := backchannel.New(backchannel.Config{})
		if err == nil {
			t.Fatal("New error = nil, want the missing issuer and signer")
		}
		if !strings.Contains(err.Error(), "issuer is missing") {
			t.Errorf("New error = %v, want the missing issuer named", err)
		}
		if !strings.Contains(err.Error(), "signer is missing") {
			t.Errorf("New error = %v, want the missing signer named", err)
		}
	})

	t.Run("issuer and signer are enough", func(t *testing.T) {
		if _, err := backchannel.New(backchannel.Config{Issuer: testIssuer, Signer: signer}); err != nil {
			t.Errorf("New error = %v, want none", err)
		}
	})
}

func mustParseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	parsed, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return parsed
}
