package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

// run executes the CLI with args and standard input, returning its output.
func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// clearEnvironment keeps the caller's LATCHKEY_* variables out of a test.
func clearEnvironment(t *testing.T) {
	for _, name := range []string{"LATCHKEY_SYSTEM_SECRET", "LATCHKEY_SYSTEM_SECRET_FILE", "LATCHKEY_ISSUER",
		"LATCHKEY_DEV", "LATCHKEY_DATABASE_URL", "LATCHKEY_DATA_DIR"} {
		t.Setenv(name, "")
	}
}

func TestServeRefusesWithoutSecretOrIssuer(t *testing.T) {
	clearEnvironment(t)
	dataDir := t.TempDir()

	_, err := run(t, "", "serve", "all", "--data-dir", dataDir)
	if err == nil {
		t.Fatal("serve started without a system secret or issuer")
	}
	for _, want := range []string{"missing issuer URL", "LATCHKEY_ISSUER", "missing system secret", "LATCHKEY_SYSTEM_SECRET"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	t.Setenv("LATCHKEY_ISSUER", "https://login.example.com")
	_, err = run(t, "", "serve", "provider", "--data-dir", dataDir)
	if err == nil || strings.Contains(err.Error(), "issuer") || !strings.Contains(err.Error(), "system secret") {
		t.Errorf("with an issuer set, error = %v; want only the missing system secret", err)
	}

	_, err = run(t, "", "serve", "all", "--data-dir", dataDir, "--issuer", "https://login.example.com", "--system-secret", "short")
	if err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("short secret: error = %v, want a length complaint", err)
	}

	_, err = run(t, "", "serve", "all", "--data-dir", dataDir, "--issuer", "http://login.example.com",
		"--system-secret", strings.Repeat("s", 32))
	if err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("http issuer on a public host: error = %v, want https required", err)
	}
}

func TestClientsLifecycle(t *testing.T) {
	clearEnvironment(t)
	dataDir := t.TempDir()
	common := []string{"--data-dir", dataDir, "--system-secret", strings.Repeat("k", 40)}
	if _, err := run(t, "", append([]string{"migrate", "up"}, common...)...); err != nil {
		t.Fatalf("migrate up: %v", err)
	}

	out, err := run(t, "", append([]string{"clients", "create", "--name", "Shop", "--redirect-uri", "https://shop.example/cb",
		"--redirect-uri", "https://shop.example/cb2", "--post-logout-redirect-uri", "https://shop.example/",
		"--grant-type", "authorization_code", "--grant-type", "refresh_token", "--scope", "openid profile",
		"--first-party", "--output", "json"}, common...)...)
	if err != nil {
		t.Fatalf("clients create: %v\n%s", err, out)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("clients create output is not JSON: %v\n%s", err, out)
	}
	clientID, _ := created["client_id"].(string)
	secret, _ := created["client_secret"].(string)
	if clientID == "" || len(secret) < 43 {
		t.Fatalf("client_id %q, client_secret %q: want both, the secret of 256 bits", clientID, secret)
	}
	if redirects, _ := created["redirect_uris"].([]any); len(redirects) != 2 {
		t.Errorf("redirect_uris = %v, want two", created["redirect_uris"])
	}
	if created["first_party"] != true {
		t.Errorf("first_party = %v", created["first_party"])
	}

	out, err = run(t, "", append([]string{"clients", "get", clientID, "--output", "json"}, common...)...)
	if err != nil {
		t.Fatalf("clients get: %v", err)
	}
	if strings.Contains(out, secret) || strings.Contains(out, `"client_secret":`) {
		t.Error("clients get shows the secret")
	}

	out, err = run(t, "", append([]string{"clients", "create", "--name", "SPA", "--public",
		"--redirect-uri", "http://127.0.0.1:5173/cb", "--output", "json"}, common...)...)
	if err != nil {
		t.Fatalf("create public client: %v", err)
	}
	if strings.Contains(out, `"client_secret":`) {
		t.Error("a public client was given a secret")
	}

	out, err = run(t, "", append([]string{"clients", "list"}, common...)...)
	if err != nil || !strings.Contains(out, clientID) || !strings.Contains(out, "SPA") {
		t.Errorf("clients list: %v\n%s", err, out)
	}

	if _, err := run(t, "", append([]string{"clients", "delete", clientID}, common...)...); err != nil {
		t.Fatalf("clients delete: %v", err)
	}
	if _, err := run(t, "", append([]string{"clients", "get", clientID}, common...)...); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("get after delete: %v, want not found", err)
	}
}

func TestClientsCreateRejectsBadOptions(t *testing.T) {
	clearEnvironment(t)
	common := []string{"--data-dir", t.TempDir(), "--system-secret", strings.Repeat("k", 40), "--migrate"}
	if _, err := run(t, "", append([]string{"migrate", "up"}, common...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "", append([]string{"clients", "create", "--name", "A", "--redirect-uri", "https://a.example/cb"}, common...)...); err != nil {
		t.Fatalf("valid options rejected, so the cases below prove nothing: %v", err)
	}

	cases := map[string]struct {
		args []string
		want string
	}{
		"missing name":         {[]string{"--redirect-uri", "https://a.example/cb"}, "--name is required"},
		"missing redirect":     {[]string{"--name", "A"}, "--redirect-uri is required"},
		"unknown grant type":   {[]string{"--name", "A", "--redirect-uri", "https://a.example/cb", "--grant-type", "password"}, `unknown grant type "password"`},
		"redirect fragment":    {[]string{"--name", "A", "--redirect-uri", "https://a.example/cb#x"}, "must not contain a fragment"},
		"relative redirect":    {[]string{"--name", "A", "--redirect-uri", "/cb"}, "not an absolute URI"},
		"public with plain":    {[]string{"--name", "A", "--redirect-uri", "https://a.example/cb", "--public", "--allow-plain-pkce"}, "S256"},
		"unknown ID token alg": {[]string{"--name", "A", "--redirect-uri", "https://a.example/cb", "--id-token-signed-response-alg", "HS256"}, "HS256"},
		"public credentials":   {[]string{"--name", "A", "--public", "--grant-type", "client_credentials"}, "cannot use client_credentials"},
		"backchannel logout fragment": {[]string{"--name", "A", "--redirect-uri", "https://a.example/cb",
			"--backchannel-logout-uri", "https://a.example/logout#x"}, "must not contain a fragment"},
		"relative backchannel logout": {[]string{"--name", "A", "--redirect-uri", "https://a.example/cb",
			"--backchannel-logout-uri", "/logout"}, "not an absolute URI"},
		"backchannel logout over http": {[]string{"--name", "A", "--redirect-uri", "https://a.example/cb",
			"--backchannel-logout-uri", "http://a.example/logout"}, "uses http on a non-loopback host"},
		"backchannel logout scheme": {[]string{"--name", "A", "--redirect-uri", "https://a.example/cb",
			"--backchannel-logout-uri", "ftp://a.example/logout"}, "must use https"},
		"backchannel logout without host": {[]string{"--name", "A", "--redirect-uri", "https://a.example/cb",
			"--backchannel-logout-uri", "https:/logout"}, "has no host"},
		"backchannel logout without sign-in": {[]string{"--name", "A", "--grant-type", "client_credentials",
			"--backchannel-logout-uri", "https://a.example/logout"}, "needs the authorization_code grant"},
		"session required without URI": {[]string{"--name", "A", "--redirect-uri", "https://a.example/cb",
			"--backchannel-logout-session-required"}, "needs --backchannel-logout-uri"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := run(t, "", append(append([]string{"clients", "create"}, tc.args...), common...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestClientsCreateWithBackchannelLogout(t *testing.T) {
	clearEnvironment(t)
	common := []string{"--data-dir", t.TempDir(), "--system-secret", strings.Repeat("k", 40), "--migrate"}
	if _, err := run(t, "", append([]string{"migrate", "up"}, common...)...); err != nil {
		t.Fatal(err)
	}
	const logoutURI = "https://shop.example/backchannel-logout?tenant=eu"

	out, err := run(t, "", append([]string{"clients", "create", "--name", "Shop", "--redirect-uri", "https://shop.example/cb",
		"--backchannel-logout-uri", logoutURI, "--output", "json"}, common...)...)
	if err != nil {
		t.Fatalf("clients create: %v\n%s", err, out)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("clients create output is not JSON: %v\n%s", err, out)
	}
	if created["backchannel_logout_uri"] != logoutURI {
		t.Errorf("backchannel_logout_uri = %v, want %q", created["backchannel_logout_uri"], logoutURI)
	}
	if created["backchannel_logout_session_required"] != true {
		t.Errorf("backchannel_logout_session_required = %v, want the default true", created["backchannel_logout_session_required"])
	}
	clientID, _ := created["client_id"].(string)

	out, err = run(t, "", append([]string{"clients", "get", clientID}, common...)...)
	if err != nil {
		t.Fatalf("clients get: %v", err)
	}
	if !strings.Contains(out, logoutURI) {
		t.Errorf("clients get does not show the back-channel logout URI:\n%s", out)
	}
	if !strings.Contains(out, "backchannel_logout_session_required:") {
		t.Errorf("clients get does not show backchannel_logout_session_required:\n%s", out)
	}

	out, err = run(t, "", append([]string{"clients", "create", "--name", "Local", "--redirect-uri", "http://127.0.0.1:8080/cb",
		"--backchannel-logout-uri", "http://127.0.0.1:8080/logout", "--backchannel-logout-session-required=false",
		"--output", "json"}, common...)...)
	if err != nil {
		t.Fatalf("create client with a loopback http logout URI: %v\n%s", err, out)
	}
	var local map[string]any
	if err := json.Unmarshal([]byte(out), &local); err != nil {
		t.Fatalf("clients create output is not JSON: %v\n%s", err, out)
	}
	if local["backchannel_logout_session_required"] != false {
		t.Errorf("backchannel_logout_session_required = %v, want false", local["backchannel_logout_session_required"])
	}

	out, err = run(t, "", append([]string{"clients", "create", "--name", "Plain", "--redirect-uri", "https://plain.example/cb",
		"--output", "json"}, common...)...)
	if err != nil {
		t.Fatalf("create client without a logout URI: %v\n%s", err, out)
	}
	var plain map[string]any
	if err := json.Unmarshal([]byte(out), &plain); err != nil {
		t.Fatalf("clients create output is not JSON: %v\n%s", err, out)
	}
	if _, ok := plain["backchannel_logout_uri"]; ok {
		t.Errorf("backchannel_logout_uri = %v for a client without one, want it left out", plain["backchannel_logout_uri"])
	}
	if _, ok := plain["backchannel_logout_session_required"]; ok {
		t.Errorf("backchannel_logout_session_required = %v for a client without a URI, want it left out", plain["backchannel_logout_session_required"])
	}

	out, err = run(t, "", append([]string{"clients", "list"}, common...)...)
	if err != nil {
		t.Fatalf("clients list: %v", err)
	}
	if !strings.Contains(out, "BACKCHANNEL LOGOUT URI") {
		t.Errorf("clients list has no back-channel logout column:\n%s", out)
	}
	if !strings.Contains(out, logoutURI) {
		t.Errorf("clients list does not show %q:\n%s", logoutURI, out)
	}
}

func TestUsersAndKeys(t *testing.T) {
	clearEnvironment(t)
	common := []string{"--data-dir", t.TempDir(), "--system-secret", strings.Repeat("k", 40), "--migrate"}
	if _, err := run(t, "", append([]string{"migrate", "up"}, common...)...); err != nil {
		t.Fatal(err)
	}

	out, err := run(t, "correct horse battery\n", append([]string{"users", "create", "--username", "Alice",
		"--email", "alice@example.com", "--password-stdin"}, common...)...)
	if err != nil || !strings.Contains(out, "created user alice") {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	if _, err := run(t, "another password\n", append([]string{"users", "create", "--username", "alice",
		"--email", "a2@example.com", "--password-stdin"}, common...)...); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Errorf("duplicate username: %v, want taken", err)
	}
	if _, err := run(t, "short\n", append([]string{"users", "set-password", "alice", "--password-stdin"}, common...)...); err == nil {
		t.Error("a 5-character password was accepted")
	}
	if _, err := run(t, "a new long password\n", append([]string{"users", "set-password", "alice", "--password-stdin"}, common...)...); err != nil {
		t.Errorf("set-password: %v", err)
	}

	if _, err := run(t, "", append([]string{"keys", "rotate"}, common...)...); err != nil {
		t.Fatalf("first rotate: %v", err)
	}
	if _, err := run(t, "", append([]string{"keys", "rotate", "--algorithm", "ES256"}, common...)...); err != nil {
		t.Fatalf("second rotate: %v", err)
	}
	out, err = run(t, "", append([]string{"keys", "list", "--output", "json"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var keys []map[string]any
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("keys list output: %v\n%s", err, out)
	}
	active := map[string]int{}
	for _, key := range keys {
		if key["active"] == true {
			active[key["alg"].(string)]++
		}
	}
	if len(keys) != 3 || active["ES256"] != 1 || active["RS256"] != 1 {
		t.Errorf("keys = %v; want RS256 and two ES256 keys, one active per algorithm", keys)
	}
}

func TestAuditVerifyFindsTampering(t *testing.T) {
	clearEnvironment(t)
	dataDir := t.TempDir()
	common := []string{"--data-dir", dataDir, "--system-secret", strings.Repeat("k", 40), "--migrate"}
	if _, err := run(t, "", append([]string{"migrate", "up"}, common...)...); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"victor", "wendy"} {
		if _, err := run(t, "a long password\n", append([]string{"users", "create", "--username", name,
			"--email", name + "@example.com", "--password-stdin", "--role", "admin"}, common...)...); err != nil {
			t.Fatalf("users create %s: %v", name, err)
		}
	}
	out, err := run(t, "", append([]string{"audit", "verify"}, common...)...)
	if err != nil || !strings.Contains(out, "2 events verified") {
		t.Fatalf("audit verify on an intact log: %v\n%s", err, out)
	}

	db, err := storage.Open(context.Background(), storage.SQLitePath(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DB.Exec("UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 1").Error; err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = run(t, "", append([]string{"audit", "verify"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "broken at event 1") {
		t.Errorf("audit verify after tampering: %v, want a broken link at event 1", err)
	}
}

func TestUsersCreateWithUnknownRole(t *testing.T) {
	clearEnvironment(t)
	common := []string{"--data-dir", t.TempDir(), "--system-secret", strings.Repeat("k", 40), "--migrate"}
	if _, err := run(t, "", append([]string{"migrate", "up"}, common...)...); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, "a long password\n", append([]string{"users", "create", "--username", "xavier",
		"--email", "x@example.com", "--password-stdin", "--role", "emperor"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), `role "emperor" not found`) {
		t.Errorf("unknown role: %v", err)
	}
	if _, err := run(t, "a long password\n", append([]string{"users", "create", "--username", "xavier",
		"--email", "x@example.com", "--password-stdin"}, common...)...); err != nil {
		t.Errorf("the failed create left the user behind: %v", err)
	}
}
