package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// fakeDiscoveryServer serves a discovery document and JWK set good enough
// for the Config OP plan, over TLS.
func fakeDiscoveryServer(t *testing.T) *httptest.Server {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Use: "sig", Algorithm: "RS256"}}})
	server := httptest.NewUnstartedServer(nil)
	server.StartTLS()
	t.Cleanup(server.Close)
	issuer := server.URL
	document, _ := json.Marshal(map[string]any{
		"issuer": issuer, "authorization_endpoint": issuer + "/auth", "token_endpoint": issuer + "/token",
		"userinfo_endpoint": issuer + "/userinfo", "jwks_uri": issuer + "/jwks",
		"scopes_supported": []string{"openid"}, "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"claims_supported": []string{"sub"},
	})
	server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_, _ = w.Write(document)
		case "/jwks":
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	})
	return server
}

func TestConformanceRunConfigPlan(t *testing.T) {
	clearEnvironment(t)
	server := fakeDiscoveryServer(t)
	dir := t.TempDir()
	reportPath := filepath.Join(dir, "report.json")

	// Static clients, because the fake provider offers no registration;
	// the Config OP plan uses none of them.
	clients := writeClients(t)

	output, err := run(t, "", "conformance", "run", "--issuer", server.URL, "--plan", "config", "--insecure-skip-verify",
		"--username", "u", "--password", "p", "--clients", clients, "--listen", freeListenAddress(t), "--report", reportPath, "--log-level", "error")
	if err != nil {
		t.Fatalf("conformance run failed: %v\n%s", err, output)
	}
	if !strings.Contains(output, "oidcc-discovery-endpoint-verification") {
		t.Errorf("the table does not list the module:\n%s", output)
	}
	lines := strings.Split(strings.TrimSpace(output), "\n")
	if last := lines[len(lines)-1]; last != "1 passed, 0 failed" {
		t.Errorf("last line = %q, expected \"1 passed, 0 failed\"", last)
	}
	if !strings.Contains(output, "Extra checks (not part of certification)") {
		t.Errorf("the output has no extra checks section:\n%s", output)
	}

	var report struct {
		Modules []struct{ Module, Result string }
	}
	data, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatalf("read the JSON report: %v", err)
	}
	if err := json.Unmarshal(data, &report); err != nil {
		t.Fatalf("the JSON report is invalid: %v", err)
	}
	if len(report.Modules) != 1 || report.Modules[0].Result != "PASSED" {
		t.Errorf("report modules = %+v, expected one PASSED", report.Modules)
	}
}

func TestConformanceRunRejectsBadInput(t *testing.T) {
	clearEnvironment(t)
	server := fakeDiscoveryServer(t)

	_, err := run(t, "", "conformance", "run", "--issuer", server.URL, "--plan", "nope", "--username", "u", "--password", "p")
	if err == nil || !strings.Contains(err.Error(), `unknown plan "nope"`) {
		t.Errorf("unknown plan: error = %v", err)
	}

	_, err = run(t, "", "conformance", "run", "--issuer", server.URL, "--plan", "basic", "--insecure-skip-verify",
		"--username", "u", "--password", "p", "--report", filepath.Join(t.TempDir(), "r.json"))
	if err == nil || !strings.Contains(err.Error(), "--clients") {
		t.Errorf("provider without registration and no clients: error = %v, expected advice to pass --clients", err)
	}
}

func TestConformanceRunFailsOnFailedModule(t *testing.T) {
	clearEnvironment(t)
	server := fakeDiscoveryServer(t)
	output, err := run(t, "", "conformance", "run", "--issuer", server.URL, "--plan", "rp-initiated-logout", "--insecure-skip-verify",
		"--module", "oidcc-rp-initiated-logout-discovery-endpoint-verification",
		"--username", "u", "--password", "p", "--report", filepath.Join(t.TempDir(), "r.json"), "--log-level", "error",
		"--clients", writeClients(t), "--listen", freeListenAddress(t))
	if err == nil || !strings.Contains(err.Error(), "1 conformance modules FAILED") {
		t.Fatalf("error = %v, expected one FAILED module\n%s", err, output)
	}
	if !strings.Contains(output, "CheckDiscEndpointEndSessionEndpoint") {
		t.Errorf("the table does not name the failed check:\n%s", output)
	}
}

func writeClients(t *testing.T) string {
	t.Helper()
	client := map[string]string{"client_id": "c", "client_secret": "s"}
	data, _ := json.Marshal(map[string]any{"client": client, "client2": client, "client_secret_post": client})
	path := filepath.Join(t.TempDir(), "clients.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freeListenAddress returns a loopback address whose port was free a
// moment ago, because static clients need a fixed callback port.
func freeListenAddress(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	return listener.Addr().String()
}

func TestConformanceRunStaticClientsNeedFixedPort(t *testing.T) {
	clearEnvironment(t)
	_, err := run(t, "", "conformance", "run", "--issuer", "https://127.0.0.1:1", "--plan", "basic",
		"--username", "u", "--password", "p", "--clients", writeClients(t))
	if err == nil || !strings.Contains(err.Error(), "fixed callback port") {
		t.Errorf("error = %v, expected a request for a fixed --listen port", err)
	}
}
