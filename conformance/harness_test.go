package conformance

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestSignClientAssertionWithoutKey(t *testing.T) {
	_, err := signClientAssertion(&client{ID: "static-client", AuthMethod: "private_key_jwt"}, "https://op.example.com/token")
	if err == nil {
		t.Fatal("signing without a key succeeded")
	}
	if !strings.Contains(err.Error(), "no private key") {
		t.Errorf("error = %v, expected it to say the client has no private key", err)
	}
}

func TestRunRejectsUnknownModule(t *testing.T) {
	opts := Options{Issuer: "https://op.invalid", Plans: []string{"basic"}, Username: "u", Password: "p",
		Modules: []string{"oidcc-server", "oidcc-no-such-module"}}
	_, err := Run(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), `unknown module "oidcc-no-such-module"`) {
		t.Errorf("error = %v, expected the unknown module to be named", err)
	}
}

func TestRunRejectsModuleOutsidePlans(t *testing.T) {
	server := fakeProviderWithoutRegistration(t)
	opts := Options{Issuer: server.URL, Plans: []string{"config"}, Username: "u", Password: "p", HTTPClient: server.Client(),
		Listen: freeAddress(t), Modules: []string{"oidcc-server"},
		Clients: &StaticClients{Client: StaticClient{"a", "s"}, Client2: StaticClient{"b", "s"}, ClientSecretPost: StaticClient{"c", "s"}}}
	_, err := Run(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), "no module") {
		t.Errorf("error = %v, expected a run without modules to fail", err)
	}
}

func TestDescribeBodyHidesSecrets(t *testing.T) {
	header := http.Header{"Content-Type": {"application/json"}}
	body := []byte(`{"access_token":"AT-secret","refresh_token":"RT-secret","client_secret":"CS-secret",` +
		`"registration_access_token":"RAT-secret","error":"invalid_grant","error_description":"code expired"}`)
	summary := describeBody(header, body)
	if strings.Contains(summary, "-secret") {
		t.Errorf("summary shows a secret: %s", summary)
	}
	for _, expected := range []string{`"application/json"`, "access_token", "registration_access_token", `error="invalid_grant"`, `error_description="code expired"`} {
		if !strings.Contains(summary, expected) {
			t.Errorf("summary %q lacks %s", summary, expected)
		}
	}

	html := describeBody(http.Header{"Content-Type": {"text/html"}}, []byte("<p>token AT-secret</p>"))
	if strings.Contains(html, "-secret") || !strings.Contains(html, "22 bytes") {
		t.Errorf("summary of a non-JSON body = %q, expected its length only", html)
	}
}

func TestBrokenTokenErrorHidesTokens(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var accessToken string
	report := runBroken(t, breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		if !isPath(r, "/oauth2/token") {
			return
		}
		editJSON(res, func(body map[string]any) {
			mu.Lock()
			defer mu.Unlock()
			accessToken, _ = body["access_token"].(string)
		})
		res.Code = http.StatusBadRequest
	}}, "basic", "oidcc-server")
	expectModule(t, report, "oidcc-server", ResultFailed, checkTokenStatus200, Fatal)
	mu.Lock()
	defer mu.Unlock()
	if accessToken == "" {
		t.Fatal("the provider issued no access token")
	}
	for _, f := range report.Modules[0].Findings {
		if strings.Contains(f.Message, accessToken) {
			t.Errorf("finding %s shows the access token", f.Check)
		}
	}
}

// TestStaticClientsSkipDynamicPlan runs the dynamic plan's modules that use
// private_key_jwt with static clients, which have no key.
func TestStaticClientsSkipDynamicPlan(t *testing.T) {
	server := fakeProviderWithoutRegistration(t)
	opts := Options{Issuer: server.URL, Plans: []string{"dynamic"}, Username: "u", Password: "p", HTTPClient: server.Client(),
		Listen: freeAddress(t), DisableBrowser: true, ArtifactsDir: t.TempDir(),
		Modules: []string{"oidcc-server", "oidcc-refresh-token", "oidcc-ensure-request-object-with-redirect-uri"},
		Clients: &StaticClients{Client: StaticClient{"a", "s"}, Client2: StaticClient{"b", "s"}, ClientSecretPost: StaticClient{"c", "s"}}}
	report := run(t, opts)
	if len(report.Modules) != 3 {
		t.Fatalf("the report has %d modules, expected 3", len(report.Modules))
	}
	for _, m := range report.Modules {
		if m.Result != ResultSkipped || m.Reason != dynamicPlanSkipReason {
			t.Errorf("%s ended %s (%s), expected SKIPPED: %s", m.Module, m.Result, m.Reason, dynamicPlanSkipReason)
		}
	}
}

func TestBrokenRunCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := breakage{request: func(r *http.Request) {
		if isPath(r, "/oauth2/auth") {
			cancel()
		}
	}}
	op := newTestProvider(t, broken(t, b))
	opts := op.options(t, false, "basic")
	opts.Modules = []string{"oidcc-server", "oidcc-userinfo-get", "oidcc-userinfo-post-body"}
	opts.Parallel = 1
	report, err := Run(ctx, opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if report.Counts.Interrupted != 3 || report.Counts.Failed != 0 || report.Counts.Passed != 0 {
		t.Errorf("counts = %+v, expected 3 interrupted and none failed or passed", report.Counts)
	}
	for _, m := range report.Modules {
		if m.Result != ResultInterrupted {
			t.Errorf("%s ended %s (%s), expected INTERRUPTED", m.Module, m.Result, m.Reason)
		}
	}
}

func TestBrokenPromptNoneShowsLogin(t *testing.T) {
	t.Parallel()
	b := rewriteAuthorizationQuery(func(q url.Values) {
		if q.Get("prompt") == "none" {
			q.Set("prompt", "login")
		}
	})
	report := runBroken(t, b, "basic", "oidcc-prompt-none-logged-in", "oidcc-id-token-hint")
	expectModule(t, report, "oidcc-prompt-none-logged-in", ResultFailed, checkPromptNoneSilent, Failure)
	expectModule(t, report, "oidcc-id-token-hint", ResultFailed, checkPromptNoneSilent, Failure)
}

func TestBrokenRefreshGrantTypesAbsent(t *testing.T) {
	t.Parallel()
	report := runBroken(t, editDiscovery(func(d map[string]any) { delete(d, "grant_types_supported") }), "basic", "oidcc-refresh-token")
	expectModule(t, report, "oidcc-refresh-token", ResultWarning, checkRefreshAdvertised, Warning)
}

// TestBrokenFormPostEnctype serves form_post pages that submit as
// text/plain, and runs the HTTP driver, which must send what a browser
// sends.
func TestBrokenFormPostEnctype(t *testing.T) {
	t.Parallel()
	op := newTestProvider(t, broken(t, breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		body := res.Body.Bytes()
		if bytes.Contains(body, []byte(`<form id="response" method="post"`)) {
			res.Body = bytes.NewBuffer(bytes.Replace(body, []byte(`<form id="response" method="post"`), []byte(`<form id="response" method="post" enctype="text/plain"`), 1))
		}
	}}))
	opts := op.options(t, false, "formpost-basic")
	opts.DisableBrowser = true
	opts.Modules = []string{"oidcc-server"}
	report := run(t, opts)
	expectModule(t, report, "oidcc-server", ResultFailed, checkCallbackContentType, Failure)
}

func TestHostResolverRules(t *testing.T) {
	rules := hostResolverRules([]string{"op.example.com", "127.0.0.1", "[::1]", ""})
	expected := "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE op.example.com, EXCLUDE ::1"
	if rules != expected {
		t.Errorf("rules = %q, expected %q", rules, expected)
	}
}
