package userapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkGetMe measures GET /v1/me through the full middleware: token
// verification against the cached JWKS, the session check, the user and
// the response, served straight to the handler without a network hop.
func BenchmarkGetMe(b *testing.B) {
	env := newTestEnv(b)
	_, password := env.createUser(b, "bench")
	token := env.signIn(b, env.newBrowser(b), "bench", password, personScopes...)

	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, env.apiURL+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+token.AccessToken)
		rec := httptest.NewRecorder()
		env.apiHandler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
