package provider

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Request size limits. Authorization requests travel in the URL and token
// requests in small form bodies. Nothing legitimate comes close to these.
const (
	maxQueryBytes = 8 << 10
	maxBodyBytes  = 64 << 10
	maxValueBytes = 4 << 10
)

type requestIDKey struct{}

// logRequests gives each request an id and logs its outcome. Query strings
// are never logged: they carry authorization codes and states.
func (p *Provider) logRequests(c *gin.Context) {
	start := time.Now()
	requestID := randomToken(9)
	ctx := context.WithValue(c.Request.Context(), requestIDKey{}, requestID)
	c.Request = c.Request.WithContext(ctx)
	c.Header("X-Request-Id", requestID)

	c.Next()

	p.logger.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("request_id", requestID),
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", c.Writer.Status()),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
}

// recoverPanics turns a panic into a 500 and an Error log line.
func (p *Provider) recoverPanics(c *gin.Context) {
	defer func() {
		if recovered := recover(); recovered != nil {
			p.logger.ErrorContext(c.Request.Context(), "panic while serving request", "path", c.Request.URL.Path, "panic", recovered)
			if !c.Writer.Written() {
				c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "server_error", "error_description": "Internal error."})
			}
		}
	}()
	c.Next()
}

// limitRequestSize rejects oversized URLs, bodies and parameter values
// before any handler parses them: 413 for a body over maxBodyBytes, 400 for
// a query over maxQueryBytes or any value over maxValueBytes.
func limitRequestSize(c *gin.Context) {
	if len(c.Request.URL.RawQuery) > maxQueryBytes {
		rejectOversized(c, http.StatusBadRequest, "The query string is too long.")
		return
	}
	if c.Request.ContentLength > maxBodyBytes {
		rejectOversized(c, http.StatusRequestEntityTooLarge, "The request body is too large.")
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes)

	if c.Request.Method == http.MethodPost || c.Request.Method == http.MethodGet {
		if err := c.Request.ParseForm(); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				rejectOversized(c, http.StatusRequestEntityTooLarge, "The request body is too large.")
				return
			}
			rejectOversized(c, http.StatusBadRequest, "The request parameters are malformed.")
			return
		}
		for name, values := range c.Request.Form {
			for _, value := range values {
				if len(value) > maxValueBytes {
					rejectOversized(c, http.StatusBadRequest, "A request parameter is too long.")
					return
				}
			}
			// RFC 6749 §3.1 and §3.2: parameters must not be repeated.
			if len(values) > 1 && strings.HasPrefix(c.Request.URL.Path, "/oauth2/") {
				rejectOversized(c, http.StatusBadRequest, "The parameter "+name+" is repeated.")
				return
			}
		}
	}
	c.Next()
}

// rejectOversized responds to a request the middleware rejects before any
// handler runs.
func rejectOversized(c *gin.Context, status int, description string) {
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatusJSON(status, gin.H{"error": "invalid_request", "error_description": description})
}
