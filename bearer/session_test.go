package bearer_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/bearer"
)

// sessionChecker records the sids it is asked about and fails for ended
// sessions.
type sessionChecker struct {
	mu      sync.Mutex
	checked []string
	ended   map[string]error
}

func (s *sessionChecker) check(ctx context.Context, sid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checked = append(s.checked, sid)
	return s.ended[sid]
}

func (s *sessionChecker) checkedSIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.checked...)
}

func TestSessionCheck(t *testing.T) {
	tests := []struct {
		name        string
		sid         any // nil removes the claim
		wantStatus  int
		wantError   string
		wantChecked bool
	}{
		{name: "live session passes", sid: "session-live", wantStatus: http.StatusOK, wantChecked: true},
		{name: "ended session is rejected", sid: "session-ended", wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantChecked: true},
		{name: "unreachable session store gives 503", sid: "session-unknowable", wantStatus: http.StatusServiceUnavailable, wantChecked: true},
		{name: "token without sid is not checked", sid: nil, wantStatus: http.StatusOK, wantChecked: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checker := &sessionChecker{ended: map[string]error{
				"session-ended":      errors.New("login session not found"),
				"session-unknowable": fmt.Errorf("redis timed out: %w", bearer.ErrUnavailable),
			}}
			f := newTokenFixture(t, func(cfg *bearer.Config) { cfg.SessionCheck = checker.check })
			engine := newEngine(f.verifier)
			token := sign(t, f.ecKey, f.claimsWith(map[string]any{"sid": tt.sid}))

			r := get(t, engine, "/resource", "Bearer "+token)

			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.rawBody)
			}
			if got := challengeError(r.challenge); got != tt.wantError {
				t.Errorf("challenge error = %q, want %q", got, tt.wantError)
			}
			checked := checker.checkedSIDs()
			if tt.wantChecked && (len(checked) != 1 || checked[0] != tt.sid) {
				t.Errorf("checked sids = %v, want [%v]", checked, tt.sid)
			}
			if !tt.wantChecked && len(checked) != 0 {
				t.Errorf("checked sids = %v, want none", checked)
			}
		})
	}
}

func TestSessionCheckRunsAfterSignature(t *testing.T) {
	checker := &sessionChecker{}
	f := newTokenFixture(t, func(cfg *bearer.Config) { cfg.SessionCheck = checker.check })
	forged := replacePayload(t, sign(t, f.ecKey, f.claims()), f.claimsWith(map[string]any{"sid": "someone-else"}))

	if _, err := f.verifier.Verify(context.Background(), forged); !errors.Is(err, bearer.ErrInvalidToken) {
		t.Fatalf("forged token: error %v, want ErrInvalidToken", err)
	}
	if checked := checker.checkedSIDs(); len(checked) != 0 {
		t.Errorf("session check ran for a forged token: %v", checked)
	}
}
