// Package httpapi holds what Latchkey's JSON APIs share: RFC 9457 problem
// responses, request ids with one log line per request, and recovery from
// panics.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/storage"
)

// Problem is an RFC 9457 problem document. FieldErrors names each invalid
// field of a request body or query.
type Problem struct {
	Type        string       `json:"type"`
	Title       string       `json:"title"`
	Status      int          `json:"status"`
	Detail      string       `json:"detail,omitempty"`
	FieldErrors []FieldError `json:"errors,omitempty"`
}

// FieldError is one invalid field of a request.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// WriteProblem responds with a problem document and aborts the request.
// With type about:blank the title must be the status phrase (RFC 9457
// §4.2.1), so summary becomes the detail when no detail is given.
func WriteProblem(c *gin.Context, status int, summary, detail string, fields ...FieldError) {
	if detail == "" {
		detail = summary
	}
	body, _ := json.Marshal(Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, FieldErrors: fields})
	c.Header("Cache-Control", "no-store")
	c.Data(status, "application/problem+json", body)
	c.Abort()
}

// WriteStoreError responds to a storage failure: 404 for a missing row,
// 503 when a dependency is down, 500 otherwise.
func WriteStoreError(c *gin.Context, logger *slog.Logger, err error) {
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		WriteProblem(c, http.StatusNotFound, "Not found", "No such resource.")
	case errors.Is(err, storage.ErrUnavailable):
		logger.ErrorContext(c.Request.Context(), "dependency unavailable", "path", c.FullPath(), "error", err)
		c.Header("Retry-After", "5")
		WriteProblem(c, http.StatusServiceUnavailable, "Service unavailable", "A service Latchkey depends on is unavailable. Retry later.")
	default:
		logger.ErrorContext(c.Request.Context(), "request failed", "path", c.FullPath(), "error", err)
		WriteProblem(c, http.StatusInternalServerError, "Internal error", "")
	}
}

// requestIDKey is the gin context key of the request id.
const requestIDKey = "latchkey.request_id"

// RequestID returns middleware that gives each request an id, in the
// X-Request-Id header and on the request's log line. Query strings are not
// logged: they may carry secrets.
func RequestID(logger *slog.Logger, service string) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		id := NewRequestID()
		c.Set(requestIDKey, id)
		c.Header("X-Request-Id", id)

		c.Next()

		logger.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
			slog.String("service", service),
			slog.String("request_id", id),
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
	}
}

// RequestIDFrom returns the id RequestID gave the request.
func RequestIDFrom(c *gin.Context) string {
	return c.GetString(requestIDKey)
}

// NewRequestID returns an id in the provider's format: 9 random bytes,
// base64url-encoded.
func NewRequestID() string {
	buf := make([]byte, 9)
	_, _ = rand.Read(buf)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Recover returns middleware that turns a panic into a 500 problem and
// logs it.
func Recover(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if recovered := recover(); recovered != nil {
				logger.ErrorContext(c.Request.Context(), "panic while serving request", "path", c.Request.URL.Path, "panic", recovered)
				WriteProblem(c, http.StatusInternalServerError, "Internal error", "")
			}
		}()
		c.Next()
	}
}

// LimitBody returns middleware that caps request bodies at limit bytes.
func LimitBody(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	}
}

// Dependency is something an API needs to serve requests, checked by
// Ready.
type Dependency struct {
	Name string
	Ping func(ctx context.Context) error
}

// Ready returns the readiness handler: 200 when every dependency responds
// within two seconds, 503 naming those that do not.
func Ready(logger *slog.Logger, dependencies ...Dependency) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		body := gin.H{"status": "ok"}
		status := http.StatusOK
		for _, dependency := range dependencies {
			body[dependency.Name] = "ok"
			if err := dependency.Ping(ctx); err != nil {
				logger.ErrorContext(ctx, "readiness check failed", "dependency", dependency.Name, "error", err)
				body[dependency.Name], body["status"], status = "unavailable", "unavailable", http.StatusServiceUnavailable
			}
		}
		c.JSON(status, body)
	}
}

// userKey is the gin context key of the user RequirePerson loaded.
const userKey = "latchkey.user"

// RequirePerson returns middleware, to run after bearer's, that lets
// through tokens issued to an enabled person and loads that person for
// CurrentUser. Client credentials tokens have no person.
func RequirePerson(logger *slog.Logger, getUser func(ctx context.Context, id string) (*storage.User, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		// A client acting for itself is its own subject. A person's token
		// names a login session, unless it was refreshed after the session
		// ended on its own (an offline grant).
		claims, ok := bearer.ClaimsFrom(c)
		if !ok || claims.Subject == "" || (claims.Subject == claims.ClientID && claims.SessionID == "") {
			WriteProblem(c, http.StatusForbidden, "Forbidden", "This endpoint needs a token issued to a person.")
			return
		}
		user, err := getUser(c.Request.Context(), claims.Subject)
		if errors.Is(err, fosite.ErrNotFound) {
			WriteProblem(c, http.StatusForbidden, "Forbidden", "The user of this token no longer exists.")
			return
		}
		if err != nil {
			WriteStoreError(c, logger, err)
			return
		}
		if user.Disabled {
			WriteProblem(c, http.StatusForbidden, "Forbidden", "The user of this token is disabled.")
			return
		}
		c.Set(userKey, user)
		c.Next()
	}
}

// CurrentUser returns the user RequirePerson loaded, or nil.
func CurrentUser(c *gin.Context) *storage.User {
	value, _ := c.Get(userKey)
	user, _ := value.(*storage.User)
	return user
}
