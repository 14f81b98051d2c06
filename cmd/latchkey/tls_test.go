package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSelfSignedCertificate writes a self-signed ECDSA certificate for
// 127.0.0.1 and its key to dir as PEM, and returns the paths and the
// certificate.
func writeSelfSignedCertificate(t *testing.T, dir string) (certFile, keyFile string, certificate *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "latchkey test"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certificate, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, certificate
}

// callbackURL is the redirect URI of the TLS test's client. Nothing
// listens there, and the test never follows a redirect to it.
const callbackURL = "http://127.0.0.1:8080/callback"

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	return addr
}

// startServe runs the CLI with args, which start a server, until the test
// ends, and fails the test if the command returns an error on shutdown.
func startServe(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRootCommand()
	cmd.SetOut(io.Discard)
	cmd.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s of its context ending")
		}
	})
}

// doWhenUp sends the request that newRequest builds until the server
// responds, for at most 30 seconds, because serve starts its services one
// after another.
func doWhenUp(t *testing.T, client *http.Client, newRequest func() *http.Request) *http.Response {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req := newRequest()
		resp, err := client.Do(req)
		if err == nil {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: %v", req.Method, req.URL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServeOverTLS(t *testing.T) {
	clearEnvironment(t)
	t.Setenv("LATCHKEY_TLS_CERT_FILE", "")
	t.Setenv("LATCHKEY_TLS_KEY_FILE", "")
	dataDir := t.TempDir()
	certFile, keyFile, certificate := writeSelfSignedCertificate(t, t.TempDir())
	providerAddr, userAPIAddr, sessionAPIAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	issuer := "https://" + providerAddr

	// The client is created before serve starts, so that a token it gets
	// shows whether the APIs fetched the provider's keys over TLS.
	out, err := run(t, "", "clients", "create", "--dev", "--data-dir", dataDir, "--name", "TLS test",
		"--grant-type", "client_credentials", "--grant-type", "authorization_code", "--redirect-uri", callbackURL,
		"--scope", "openid", "--output", "json")
	if err != nil {
		t.Fatalf("clients create: %v\n%s", err, out)
	}
	var created struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("clients create output is not JSON: %v\n%s", err, out)
	}

	startServe(t, "serve", "all", "--dev", "--data-dir", dataDir, "--issuer", issuer,
		"--provider-addr", providerAddr, "--userapi-addr", userAPIAddr, "--sessionapi-addr", sessionAPIAddr,
		"--tls-cert-file", certFile, "--tls-key-file", keyFile)

	roots := x509.NewCertPool()
	roots.AddCert(certificate)
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
	}

	t.Run("discovery", func(t *testing.T) {
		resp := doWhenUp(t, client, func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, issuer+"/.well-known/openid-configuration", nil)
			return req
		})
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("discovery status = %d, want 200", resp.StatusCode)
		}
		if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("discovery was not served over TLS 1.2 or later: %+v", resp.TLS)
		}
		var metadata map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&metadata); err != nil {
			t.Fatalf("decode discovery: %v", err)
		}
		if metadata["issuer"] != issuer {
			t.Errorf("issuer = %v, want %s", metadata["issuer"], issuer)
		}
		if endpoint, _ := metadata["end_session_endpoint"].(string); !strings.HasPrefix(endpoint, "https://") {
			t.Errorf("end_session_endpoint = %q, want https", endpoint)
		}
	})

	t.Run("TLS 1.1 rejected", func(t *testing.T) {
		old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
		}}}
		resp, err := old.Get(issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			t.Error("a TLS 1.1 client was served")
		}
	})

	t.Run("plain HTTP rejected", func(t *testing.T) {
		resp, err := http.Get("http://" + providerAddr + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatalf("plain HTTP request: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: status %d, want 400", resp.StatusCode)
		}
	})

	t.Run("secure cookies", func(t *testing.T) {
		noRedirect := *client
		noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		next := issuer + "/oauth2/auth?" + url.Values{
			"response_type": {"code"}, "client_id": {created.ClientID}, "redirect_uri": {callbackURL},
			"scope": {"openid"}, "state": {"tls-state-1"}, "nonce": {"tls-nonce-1"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
		}.Encode()
		var cookies []*http.Cookie
		// Follow the redirects to the login page, which sets the CSRF cookie.
		for hop := 0; hop < 5 && next != ""; hop++ {
			resp, err := noRedirect.Get(next)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cookies = append(cookies, resp.Cookies()...)
			next = ""
			if location, err := resp.Location(); err == nil && strings.HasPrefix(location.String(), issuer) {
				next = location.String()
			}
		}
		if len(cookies) == 0 {
			t.Fatal("the way to the login page set no cookie, so the Secure check is void")
		}
		for _, cookie := range cookies {
			if !cookie.Secure || !strings.HasPrefix(cookie.Name, "__Host-") {
				t.Errorf("cookie %s: Secure %v; want Secure and the __Host- prefix under an https issuer", cookie.Name, cookie.Secure)
			}
		}
	})

	t.Run("APIs over TLS", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}}
		req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(created.ClientID), url.QueryEscape(created.ClientSecret))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var token struct {
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&token)
		resp.Body.Close()
		if err != nil || token.AccessToken == "" {
			t.Fatalf("client credentials token: status %d, %v", resp.StatusCode, err)
		}

		// A valid token without the admin scope gives 403. A token the API
		// cannot verify, because it could not fetch the keys, gives 503.
		for name, endpoint := range map[string]string{
			"user API":    "https://" + userAPIAddr + "/v1/users",
			"session API": "https://" + sessionAPIAddr + "/v1/sessions/stats",
		} {
			resp := doWhenUp(t, client, func() *http.Request {
				req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
				req.Header.Set("Authorization", "Bearer "+token.AccessToken)
				return req
			})
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s with a token lacking the admin scope: status %d, want 403", name, resp.StatusCode)
			}
		}
	})
}

func TestServeRejectsBadTLSSettings(t *testing.T) {
	clearEnvironment(t)
	t.Setenv("LATCHKEY_TLS_CERT_FILE", "")
	t.Setenv("LATCHKEY_TLS_KEY_FILE", "")
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSignedCertificate(t, dir)
	secret := strings.Repeat("s", 40)
	common := []string{"--data-dir", t.TempDir(), "--system-secret", secret, "--provider-addr", freeAddr(t)}

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"certificate without key", []string{"--issuer", "https://127.0.0.1:8443", "--tls-cert-file", certFile}, "must be set together"},
		{"key without certificate", []string{"--issuer", "https://127.0.0.1:8443", "--tls-key-file", keyFile}, "must be set together"},
		{"http issuer", []string{"--issuer", "http://127.0.0.1:8443", "--tls-cert-file", certFile, "--tls-key-file", keyFile}, "must be https"},
		{"missing file", []string{"--issuer", "https://127.0.0.1:8443", "--tls-cert-file", filepath.Join(dir, "none.pem"), "--tls-key-file", keyFile}, "failed to load"},
		{"key of another certificate", []string{"--issuer", "https://127.0.0.1:8443", "--tls-cert-file", certFile, "--tls-key-file", otherKey(t)}, "failed to load"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, command := range [][]string{{"config", "check"}, {"serve", "provider"}} {
				_, err := run(t, "", append(append(command, common...), tc.args...)...)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error = %v, want one that mentions %q", strings.Join(command, " "), err, tc.want)
				}
			}
		})
	}
}

// otherKey writes the key of another self-signed certificate and returns
// its path.
func otherKey(t *testing.T) string {
	t.Helper()
	_, keyFile, _ := writeSelfSignedCertificate(t, t.TempDir())
	return keyFile
}

func TestDevIssuerWithTLS(t *testing.T) {
	clearEnvironment(t)
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSignedCertificate(t, dir)
	out, err := run(t, "", "config", "check", "--dev", "--data-dir", t.TempDir(), "--provider-addr", "127.0.0.1:9443",
		"--tls-cert-file", certFile, "--tls-key-file", keyFile)
	if err != nil {
		t.Fatalf("config check --dev with TLS files: %v", err)
	}
	if !strings.Contains(out, "issuer https://127.0.0.1:9443") {
		t.Errorf("config check output %q, want the https development issuer", out)
	}
}
