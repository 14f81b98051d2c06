package userapi

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// problem is an RFC 9457 problem document. FieldErrors names each invalid
// field of a request body or query.
type problem struct {
	Type        string       `json:"type"`
	Title       string       `json:"title"`
	Status      int          `json:"status"`
	Detail      string       `json:"detail,omitempty"`
	FieldErrors []fieldError `json:"errors,omitempty"`
}

type fieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func writeProblem(c *gin.Context, status int, title, detail string, fields ...fieldError) {
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(status, problem{Type: "about:blank", Title: title, Status: status, Detail: detail, FieldErrors: fields})
	c.Header("Content-Type", "application/problem+json")
}

// fieldErrors collects validation failures so that one response names
// every bad field.
type fieldErrors []fieldError

func (f *fieldErrors) add(field, detail string) { *f = append(*f, fieldError{field, detail}) }

func (f fieldErrors) write(c *gin.Context) bool {
	if len(f) == 0 {
		return false
	}
	writeProblem(c, http.StatusBadRequest, "Invalid request", "One or more fields are invalid.", f...)
	return true
}

// writeStoreError answers a storage failure: 404 for a missing row, 409 for
// a conflict, 503 when the database is down, 500 otherwise.
func (a *API) writeStoreError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		writeProblem(c, http.StatusNotFound, "Not found", "No such resource.")
	case errors.Is(err, storage.ErrConflict):
		writeProblem(c, http.StatusConflict, "Conflict", "The name is already taken.")
	case errors.Is(err, storage.ErrUnavailable):
		a.logger.ErrorContext(c.Request.Context(), "database unavailable", "path", c.FullPath(), "error", err)
		writeProblem(c, http.StatusServiceUnavailable, "Service unavailable", "A service Latchkey depends on is unavailable. Retry later.")
	default:
		a.logger.ErrorContext(c.Request.Context(), "request failed", "path", c.FullPath(), "error", err)
		writeProblem(c, http.StatusInternalServerError, "Internal error", "")
	}
}
