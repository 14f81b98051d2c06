package bearer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

func BenchmarkVerify(b *testing.B) {
	f := newTokenFixture(b)
	token := sign(b, f.ecKey, f.claims())
	ctx := context.Background()

	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verifier.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMiddleware(b *testing.B) {
	f := newTokenFixture(b)
	engine := gin.New()
	engine.GET("/resource", f.verifier.Middleware("api:read"), func(c *gin.Context) {
		c.Status(http.StatusNoContent)
	})
	req := httptest.NewRequest(http.MethodGet, "/resource", nil)
	req.Header.Set("Authorization", "Bearer "+sign(b, f.ecKey, f.claims()))

	b.ReportAllocs()
	for b.Loop() {
		recorder := httptest.NewRecorder()
		engine.ServeHTTP(recorder, req)
		if recorder.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", recorder.Code, recorder.Body.String())
		}
	}
}
