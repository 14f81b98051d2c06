package conformance

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/storage"
)

// freeAddress returns a loopback address whose port was free a moment ago,
// for the fixed callback URL that static clients register.
func freeAddress(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	listener.Close()
	return address
}

func TestStaticClients(t *testing.T) {
	op := newTestProvider(t, nil)
	address := freeAddress(t)
	base := "http://" + address
	create := func(authMethod string) StaticClient {
		client := &storage.Client{
			ID:                       uuid.NewString(),
			Name:                     "static " + authMethod,
			RedirectURIs:             []string{base + "/callback"},
			PostLogoutRedirectURIs:   []string{base + "/post_logout_redirect"},
			GrantTypes:               []string{"authorization_code", "refresh_token"},
			ResponseTypes:            []string{"code"},
			Scopes:                   []string{"openid", "profile", "email", "address", "phone", "offline_access"},
			TokenEndpointAuthMethod:  authMethod,
			IDTokenSignedResponseAlg: "RS256",
		}
		secret := testsupport.CreateClient(t, op.store, op.secret, client)
		return StaticClient{ClientID: client.ID, ClientSecret: secret}
	}
	opts := op.options(t, false, "basic")
	opts.Listen = address
	opts.Clients = &StaticClients{
		Client:           create("client_secret_basic"),
		Client2:          create("client_secret_basic"),
		ClientSecretPost: create("client_secret_post"),
	}
	opts.Modules = []string{"oidcc-server", "oidcc-server-client-secret-post", "oidcc-refresh-token", "oidcc-idtoken-signature"}
	report := run(t, opts)

	if len(report.Modules) != 3 {
		t.Errorf("ran %d modules, expected 3: oidcc-idtoken-signature needs dynamic registration", len(report.Modules))
	}
	for _, m := range report.Modules {
		if m.Result != ResultPassed {
			t.Errorf("%s ended %s with static clients: %s\n%s", m.Module, m.Result, m.Reason, formatFindings(m.Findings))
		}
	}
}

func TestRunWithoutRegistrationOrClients(t *testing.T) {
	server := fakeProviderWithoutRegistration(t)
	opts := Options{Issuer: server.URL, Plans: []string{"basic"}, Username: "u", Password: "p", HTTPClient: server.Client()}
	_, err := Run(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), "--clients") {
		t.Errorf("error = %v, expected advice to pass --clients", err)
	}
}

func TestReportText(t *testing.T) {
	report := &Report{Modules: []*ModuleReport{
		{Plan: "basic", Variant: "code", Module: "oidcc-server", Result: ResultFailed, Reason: "CheckX: broken",
			Extras: []Finding{{Check: checkTokenPragmaExtra.ID, Severity: Extra, Message: "no Pragma"}}},
		{Plan: "basic", Variant: "code", Module: "oidcc-codereuse", Result: ResultWarning},
		{Plan: "basic", Variant: "code", Module: "oidcc-prompt-login", Result: ResultReview},
		{Plan: "basic", Variant: "code", Module: "oidcc-idtoken-unsigned", Result: ResultSkipped},
		{Plan: "basic", Variant: "code", Module: "oidcc-display-page", Result: ResultPassed},
		{Plan: "basic", Variant: "code", Module: "oidcc-display-popup", Result: ResultInterrupted},
	}, Started: time.Now()}
	report.count()
	var out bytes.Buffer
	if err := report.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if last := lines[len(lines)-1]; last != "1 passed, 1 failed" {
		t.Errorf("last line = %q", last)
	}
	if before := lines[len(lines)-2]; before != "1 warnings, 1 skipped, 1 review, 1 interrupted, 1 extra findings" {
		t.Errorf("counts line = %q", before)
	}
	if !strings.Contains(text, "basic code oidcc-server: ExtraTokenResponsePragmaNoCache: no Pragma") {
		t.Errorf("the extra finding is not listed:\n%s", text)
	}
	if !report.Failed() {
		t.Error("Failed() is false with a FAILED module")
	}
}

func TestCombineResult(t *testing.T) {
	failure := Finding{Check: "A", Severity: Failure, Message: "x"}
	warning := Finding{Check: "B", Severity: Warning, Message: "y"}
	info := Finding{Check: "C", Severity: Info, Message: "z"}
	cases := []struct {
		name        string
		findings    []Finding
		skip        string
		screenshots []string
		expected    Result
	}{
		{"failure beats skip", []Finding{failure}, "skipped", nil, ResultFailed},
		{"skip beats warning", []Finding{warning}, "skipped", nil, ResultSkipped},
		{"warning beats review", []Finding{warning}, "", []string{"a.png"}, ResultWarning},
		{"review", []Finding{info}, "", []string{"a.png"}, ResultReview},
		{"info only", []Finding{info}, "", nil, ResultPassed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			result, _ := combineResult(c.findings, c.skip, c.screenshots, "")
			if result != c.expected {
				t.Errorf("result = %s, expected %s", result, c.expected)
			}
		})
	}
}

// fakeProviderWithoutRegistration serves a discovery document without a
// registration_endpoint.
func fakeProviderWithoutRegistration(t *testing.T) *httptest.Server {
	t.Helper()
	var server *httptest.Server
	server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"` + server.URL + `","authorization_endpoint":"` + server.URL + `/auth","token_endpoint":"` + server.URL + `/token"}`))
	}))
	t.Cleanup(server.Close)
	return server
}

// TestCallbackTLS runs a code flow and, in Chromium, a form_post flow
// against a callback server that serves https with its own certificate.
func TestCallbackTLS(t *testing.T) {
	op := newTestProvider(t, nil)
	opts := op.options(t, false, "basic", "formpost-basic")
	opts.CallbackTLS = true
	opts.Modules = []string{"oidcc-server", "oidcc-prompt-login"}
	report := run(t, opts)
	if len(report.Modules) != 4 {
		t.Fatalf("ran %d modules, expected 4", len(report.Modules))
	}
	for _, m := range report.Modules {
		if m.Result == ResultFailed || (m.Result == ResultSkipped && os.Getenv("LATCHKEY_SKIP_BROWSER") != "1") {
			t.Errorf("%s %s ended %s: %s\n%s", m.Plan, m.Module, m.Result, m.Reason, formatFindings(m.Findings))
		}
	}
}
