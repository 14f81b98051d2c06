package bearer_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/bearer"
)

// tokenFixture is a fake provider publishing an ES256 and an RS256 key, a
// verifier of it, and a clock.
type tokenFixture struct {
	provider *fakeProvider
	ecKey    signingKey
	rsaKey   signingKey
	clock    *testClock
	verifier *bearer.Verifier
}

func newTokenFixture(t testing.TB, configure ...func(*bearer.Config)) *tokenFixture {
	t.Helper()
	f := &tokenFixture{ecKey: newECKey(t, "ec-1"), rsaKey: newRSAKey(t, "rsa-1"), clock: newTestClock()}
	f.provider = newFakeProvider(t, f.ecKey, f.rsaKey)
	f.verifier = newVerifier(t, f.provider, f.clock, configure...)
	return f
}

// claims returns valid claims issued at the fixture's current time.
func (f *tokenFixture) claims() map[string]any {
	return validClaims(f.provider.issuer, f.clock.Now())
}

// claimsWith returns valid claims with changes applied. A nil value
// removes the claim.
func (f *tokenFixture) claimsWith(changes map[string]any) map[string]any {
	claims := f.claims()
	for name, value := range changes {
		if value == nil {
			delete(claims, name)
		} else {
			claims[name] = value
		}
	}
	return claims
}

func TestMiddlewareTokenChecks(t *testing.T) {
	f := newTokenFixture(t)
	now := f.clock.Now()
	engine := newEngine(f.verifier, "api:read")

	rsaPublicPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(f.rsaKey.private.Public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	unpublished := newECKey(t, "ec-1")

	tests := []struct {
		name       string
		token      func() string
		wantStatus int
		wantError  string
		wantDetail string
	}{
		{
			name:       "valid ES256 token is accepted",
			token:      func() string { return sign(t, f.ecKey, f.claims()) },
			wantStatus: http.StatusOK,
		},
		{
			name:       "valid RS256 token is accepted",
			token:      func() string { return sign(t, f.rsaKey, f.claims()) },
			wantStatus: http.StatusOK,
		},
		{
			name: "typ application/at+jwt is accepted",
			token: func() string {
				header := map[jose.HeaderKey]any{jose.HeaderType: "application/at+jwt", "kid": f.ecKey.kid}
				return signJWT(t, jose.ES256, f.ecKey.private, header, f.claims())
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "typ in upper case is accepted",
			token: func() string {
				header := map[jose.HeaderKey]any{jose.HeaderType: "AT+JWT", "kid": f.ecKey.kid}
				return signJWT(t, jose.ES256, f.ecKey.private, header, f.claims())
			},
			wantStatus: http.StatusOK,
		},
		{
			name:       "audience as a single string is accepted",
			token:      func() string { return sign(t, f.ecKey, f.claimsWith(map[string]any{"aud": testAudience})) },
			wantStatus: http.StatusOK,
		},
		{
			name: "expiry within leeway is accepted",
			token: func() string {
				return sign(t, f.ecKey, f.claimsWith(map[string]any{"exp": now.Add(-10 * time.Second).Unix()}))
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "expired token is rejected",
			token: func() string {
				return sign(t, f.ecKey, f.claimsWith(map[string]any{"exp": now.Add(-time.Minute).Unix()}))
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token has expired.",
		},
		{
			name: "token before nbf is rejected",
			token: func() string {
				return sign(t, f.ecKey, f.claimsWith(map[string]any{"nbf": now.Add(5 * time.Minute).Unix()}))
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token is not valid yet.",
		},
		{
			name: "iat in the future is rejected",
			token: func() string {
				return sign(t, f.ecKey, f.claimsWith(map[string]any{"iat": now.Add(5 * time.Minute).Unix()}))
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token's iat is in the future.",
		},
		{
			name: "iat within leeway is accepted",
			token: func() string {
				return sign(t, f.ecKey, f.claimsWith(map[string]any{"iat": now.Add(10 * time.Second).Unix()}))
			},
			wantStatus: http.StatusOK,
		},
		{
			name:       "wrong issuer is rejected",
			token:      func() string { return sign(t, f.ecKey, f.claimsWith(map[string]any{"iss": "https://evil.test"})) },
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token was issued by another issuer.",
		},
		{
			name: "wrong audience is rejected",
			token: func() string {
				return sign(t, f.ecKey, f.claimsWith(map[string]any{"aud": []string{"https://other-api.test"}}))
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token is not intended for this resource server.",
		},
		{
			name:       "alg none is rejected",
			token:      func() string { return unsignedJWT(t, f.ecKey.kid, f.claims()) },
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token is not a signed JWT with an accepted algorithm.",
		},
		{
			name: "HS256 keyed with the RSA public key is rejected",
			token: func() string {
				return signJWT(t, jose.HS256, rsaPublicPEM(), accessTokenHeader(f.rsaKey.kid), f.claims())
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token is not a signed JWT with an accepted algorithm.",
		},
		{
			name: "ES256 token naming the RSA key is rejected",
			token: func() string {
				return signJWT(t, jose.ES256, f.ecKey.private, accessTokenHeader(f.rsaKey.kid), f.claims())
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token's alg does not match its signing key.",
		},
		{
			name: "RS256 token naming the EC key is rejected",
			token: func() string {
				return signJWT(t, jose.RS256, f.rsaKey.private, accessTokenHeader(f.ecKey.kid), f.claims())
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token's alg does not match its signing key.",
		},
		{
			name: "unknown kid is rejected",
			token: func() string {
				return signJWT(t, jose.ES256, f.ecKey.private, accessTokenHeader("no-such-key"), f.claims())
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token is signed with an unknown key.",
		},
		{
			name: "missing kid is rejected",
			token: func() string {
				header := map[jose.HeaderKey]any{jose.HeaderType: "at+jwt"}
				return signJWT(t, jose.ES256, f.ecKey.private, header, f.claims())
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token has no kid header.",
		},
		{
			name: "typ JWT is rejected",
			token: func() string {
				header := map[jose.HeaderKey]any{jose.HeaderType: "JWT", "kid": f.ecKey.kid}
				return signJWT(t, jose.ES256, f.ecKey.private, header, f.claims())
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token's typ header must be at+jwt.",
		},
		{
			name: "missing typ is rejected",
			token: func() string {
				header := map[jose.HeaderKey]any{"kid": f.ecKey.kid}
				return signJWT(t, jose.ES256, f.ecKey.private, header, f.claims())
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token's typ header must be at+jwt.",
		},
		{
			name: "tampered payload is rejected",
			token: func() string {
				return replacePayload(t, sign(t, f.ecKey, f.claims()), f.claimsWith(map[string]any{"sub": "admin"}))
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token's signature is invalid.",
		},
		{
			name:       "unpublished key with a known kid is rejected",
			token:      func() string { return sign(t, unpublished, f.claims()) },
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token's signature is invalid.",
		},
		{
			name:       "malformed token is rejected",
			token:      func() string { return "not-a-jwt" },
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token is not a signed JWT with an accepted algorithm.",
		},
		{
			name:       "token of three garbage segments is rejected",
			token:      func() string { return "abc.def.ghi" },
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token is not a signed JWT with an accepted algorithm.",
		},
		{
			name: "payload that is not JSON is rejected",
			token: func() string {
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.ecKey.private},
					&jose.SignerOptions{ExtraHeaders: accessTokenHeader(f.ecKey.kid)})
				if err != nil {
					t.Fatal(err)
				}
				signed, err := signer.Sign([]byte("not json"))
				if err != nil {
					t.Fatal(err)
				}
				compact, _ := signed.CompactSerialize()
				return compact
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token's claims are malformed.",
		},
		{
			name:       "scope that is not a string is rejected",
			token:      func() string { return sign(t, f.ecKey, f.claimsWith(map[string]any{"scope": []string{"api:read"}})) },
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token's claims are malformed.",
		},
		{
			name: "token over 16 KiB is rejected",
			token: func() string {
				return sign(t, f.ecKey, f.claimsWith(map[string]any{"padding": strings.Repeat("x", 16<<10)}))
			},
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token is too large.",
		},
	}

	for _, claim := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id"} {
		tests = append(tests, struct {
			name       string
			token      func() string
			wantStatus int
			wantError  string
			wantDetail string
		}{
			name:       "missing " + claim + " is rejected",
			token:      func() string { return sign(t, f.ecKey, f.claimsWith(map[string]any{claim: nil})) },
			wantStatus: http.StatusUnauthorized,
			wantError:  "invalid_token",
			wantDetail: "The access token has no " + claim + " claim.",
		})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, engine, "/resource", "Bearer "+tt.token())

			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.rawBody)
			}
			if tt.wantStatus == http.StatusOK {
				if r.challenge != "" {
					t.Errorf("WWW-Authenticate = %q on success", r.challenge)
				}
				return
			}
			if got := challengeError(r.challenge); got != tt.wantError {
				t.Errorf("challenge error = %q, want %q (challenge %q)", got, tt.wantError, r.challenge)
			}
			wantDescription := `error_description="` + tt.wantDetail + `"`
			if !strings.Contains(r.challenge, wantDescription) {
				t.Errorf("challenge %q lacks %s", r.challenge, wantDescription)
			}
			if r.body["detail"] != tt.wantDetail {
				t.Errorf("problem detail = %q, want %q", r.body["detail"], tt.wantDetail)
			}
		})
	}
}

func TestMiddlewareStoresClaims(t *testing.T) {
	f := newTokenFixture(t)
	now := f.clock.Now()
	claims := f.claims()
	engine := newEngine(f.verifier, "api:read")

	r := get(t, engine, "/resource", "Bearer "+sign(t, f.ecKey, claims))

	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", r.status, r.rawBody)
	}
	want := map[string]any{
		"sub":        "user-1",
		"client_id":  "client-1",
		"iss":        f.provider.issuer,
		"sid":        "session-1",
		"jti":        claims["jti"],
		"auth_time":  float64(now.Add(-time.Minute).Unix()),
		"iat":        float64(now.Unix()),
		"exp":        float64(now.Add(time.Hour).Unix()),
		"has_scopes": true,
	}
	for name, value := range want {
		if r.body[name] != value {
			t.Errorf("%s = %v, want %v", name, r.body[name], value)
		}
	}
	if got := r.body["scopes"]; !equalStrings(got, "openid", "api:read") {
		t.Errorf("scopes = %v, want [openid api:read]", got)
	}
	if got := r.body["aud"]; !equalStrings(got, testAudience) {
		t.Errorf("aud = %v, want [%s]", got, testAudience)
	}
	if got := r.body["roles"]; !equalStrings(got, "admin") {
		t.Errorf("roles from Raw = %v, want [admin]", got)
	}
}

// equalStrings reports whether a decoded JSON array contains exactly want.
func equalStrings(decoded any, want ...string) bool {
	values, ok := decoded.([]any)
	if !ok || len(values) != len(want) {
		return false
	}
	for i, value := range values {
		if value != want[i] {
			return false
		}
	}
	return true
}

func TestMiddlewareAuthorizationHeader(t *testing.T) {
	f := newTokenFixture(t)
	engine := newEngine(f.verifier, "api:read")
	token := sign(t, f.ecKey, f.claims())
	realm := `Bearer realm="` + testAudience + `"`

	tests := []struct {
		name          string
		target        string
		authorization []string
		wantStatus    int
		wantError     string
	}{
		{name: "canonical Bearer scheme is accepted", authorization: []string{"Bearer " + token}, wantStatus: http.StatusOK},
		{name: "lower-case bearer is accepted", authorization: []string{"bearer " + token}, wantStatus: http.StatusOK},
		{name: "upper-case BEARER is accepted", authorization: []string{"BEARER " + token}, wantStatus: http.StatusOK},
		{name: "several spaces before the token are accepted", authorization: []string{"Bearer   " + token}, wantStatus: http.StatusOK},
		{name: "missing header gets a bare challenge", wantStatus: http.StatusUnauthorized},
		{name: "Basic scheme gets a bare challenge", authorization: []string{"Basic dXNlcjpwYXNz"}, wantStatus: http.StatusUnauthorized},
		{name: "scheme without token is a bad request", authorization: []string{"Bearer"}, wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "scheme with blank token is a bad request", authorization: []string{"Bearer  "}, wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "token with a space is a bad request", authorization: []string{"Bearer " + token + " extra"}, wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "two Authorization headers are a bad request", authorization: []string{"Bearer " + token, "Bearer " + token}, wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "query token is a bad request", target: "/resource?access_token=" + token, wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if target == "" {
				target = "/resource"
			}
			r := get(t, engine, target, tt.authorization...)

			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.rawBody)
			}
			if tt.wantStatus == http.StatusOK {
				return
			}
			if !strings.HasPrefix(r.challenge, realm) {
				t.Errorf("challenge = %q, want it to start with %q", r.challenge, realm)
			}
			if got := challengeError(r.challenge); got != tt.wantError {
				t.Errorf("challenge error = %q, want %q (challenge %q)", got, tt.wantError, r.challenge)
			}
			if tt.wantError == "" && r.challenge != realm {
				t.Errorf("challenge = %q, want exactly %q", r.challenge, realm)
			}
		})
	}
}

func TestMiddlewareScopes(t *testing.T) {
	f := newTokenFixture(t)

	tests := []struct {
		name       string
		required   []string
		scope      any // nil removes the claim
		wantStatus int
		wantScope  string
	}{
		{name: "granted scope passes", required: []string{"api:read"}, scope: "openid api:read", wantStatus: http.StatusOK},
		{name: "no required scope passes", scope: "openid", wantStatus: http.StatusOK},
		{name: "all of several scopes pass", required: []string{"api:read", "openid"}, scope: "openid api:read", wantStatus: http.StatusOK},
		{name: "missing scope is forbidden", required: []string{"api:write"}, scope: "openid api:read", wantStatus: http.StatusForbidden, wantScope: "api:write"},
		{name: "one missing of several is forbidden", required: []string{"api:read", "api:write"}, scope: "api:read", wantStatus: http.StatusForbidden, wantScope: "api:read api:write"},
		{name: "token without scope claim is forbidden", required: []string{"api:read"}, scope: nil, wantStatus: http.StatusForbidden, wantScope: "api:read"},
		{name: "scope prefix does not match", required: []string{"api:read"}, scope: "api:readonly", wantStatus: http.StatusForbidden, wantScope: "api:read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine := newEngine(f.verifier, tt.required...)
			token := sign(t, f.ecKey, f.claimsWith(map[string]any{"scope": tt.scope}))

			r := get(t, engine, "/resource", "Bearer "+token)

			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.rawBody)
			}
			if tt.wantStatus == http.StatusOK {
				return
			}
			if got := challengeError(r.challenge); got != "insufficient_scope" {
				t.Errorf("challenge error = %q, want insufficient_scope (challenge %q)", got, r.challenge)
			}
			wantScope := `scope="` + tt.wantScope + `"`
			if !strings.Contains(r.challenge, wantScope) {
				t.Errorf("challenge %q lacks %s", r.challenge, wantScope)
			}
		})
	}
}

func TestMiddlewareInvalidScopePanics(t *testing.T) {
	f := newTokenFixture(t)
	defer func() {
		if recover() == nil {
			t.Error("Middleware accepted a scope containing a quote")
		}
	}()
	f.verifier.Middleware(`api"read`)
}

func TestProblemDocument(t *testing.T) {
	f := newTokenFixture(t)
	engine := newEngine(f.verifier, "api:write")
	expired := sign(t, f.ecKey, f.claimsWith(map[string]any{"exp": f.clock.Now().Add(-time.Hour).Unix()}))
	valid := sign(t, f.ecKey, f.claims())

	tests := []struct {
		name          string
		authorization []string
		wantStatus    int
		wantTitle     string
	}{
		{name: "missing token", wantStatus: http.StatusUnauthorized, wantTitle: "Unauthorized"},
		{name: "expired token", authorization: []string{"Bearer " + expired}, wantStatus: http.StatusUnauthorized, wantTitle: "Unauthorized"},
		{name: "missing scope", authorization: []string{"Bearer " + valid}, wantStatus: http.StatusForbidden, wantTitle: "Forbidden"},
		{name: "malformed header", authorization: []string{"Bearer"}, wantStatus: http.StatusBadRequest, wantTitle: "Bad Request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, engine, "/resource", tt.authorization...)

			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", r.status, tt.wantStatus)
			}
			if got := r.header.Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", got)
			}
			if r.body["type"] != "about:blank" {
				t.Errorf("type = %v, want about:blank", r.body["type"])
			}
			if r.body["title"] != tt.wantTitle {
				t.Errorf("title = %v, want %s", r.body["title"], tt.wantTitle)
			}
			if r.body["status"] != float64(tt.wantStatus) {
				t.Errorf("status member = %v, want %d", r.body["status"], tt.wantStatus)
			}
			if detail, _ := r.body["detail"].(string); detail == "" {
				t.Error("detail is empty")
			}
			if len(r.body) != 4 {
				t.Errorf("problem has members %v, want only type, title, status and detail", r.body)
			}
			if strings.Contains(r.rawBody, expired) || strings.Contains(r.challenge, expired) {
				t.Error("response repeats the token")
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	f := newTokenFixture(t)

	_, err := f.verifier.Verify(context.Background(), "not-a-jwt")
	if !errors.Is(err, bearer.ErrInvalidToken) {
		t.Errorf("malformed token: error %v does not wrap ErrInvalidToken", err)
	}
	if errors.Is(err, bearer.ErrUnavailable) {
		t.Errorf("malformed token: error %v wraps ErrUnavailable", err)
	}

	claims, err := f.verifier.Verify(context.Background(), sign(t, f.ecKey, f.claims()))
	if err != nil {
		t.Fatalf("valid token: %v", err)
	}
	if claims.Subject != "user-1" {
		t.Errorf("Subject = %q, want user-1", claims.Subject)
	}
	if !claims.NotBefore.IsZero() {
		t.Errorf("NotBefore = %v, want zero for a token without nbf", claims.NotBefore)
	}
}

func TestLeewayOption(t *testing.T) {
	f := newTokenFixture(t, func(cfg *bearer.Config) { cfg.Leeway = 2 * time.Minute })
	token := sign(t, f.ecKey, f.claimsWith(map[string]any{"exp": f.clock.Now().Add(-time.Minute).Unix()}))

	if _, err := f.verifier.Verify(context.Background(), token); err != nil {
		t.Errorf("token expired a minute ago with two minutes of leeway: %v", err)
	}
}
