package userapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

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

// writeProblem responds with a problem document. With type about:blank the
// title must be the status phrase (RFC 9457 §4.2.1), so summary becomes the
// detail when no detail is given.
func writeProblem(c *gin.Context, status int, summary, detail string, fields ...fieldError) {
	if detail == "" {
		detail = summary
	}
	body, _ := json.Marshal(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, FieldErrors: fields})
	c.Header("Cache-Control", "no-store")
	c.Data(status, "application/problem+json", body)
	c.Abort()
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

// writeStoreError responds to a storage failure: 404 for a missing row, 409 for
// a conflict, 503 when the database is down, 500 otherwise.
func (a *API) writeStoreError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		writeProblem(c, http.StatusNotFound, "Not found", "No such resource.")
	case errors.Is(err, storage.ErrConflict):
		detail := "The name is already taken."
		if strings.Contains(err.Error(), "verified email") {
			detail = "Another user has this verified email address."
		}
		writeProblem(c, http.StatusConflict, "Conflict", detail)
	case errors.Is(err, storage.ErrUnavailable):
		a.logger.ErrorContext(c.Request.Context(), "database unavailable", "path", c.FullPath(), "error", err)
		writeProblem(c, http.StatusServiceUnavailable, "Service unavailable", "A service Latchkey depends on is unavailable. Retry later.")
	default:
		a.logger.ErrorContext(c.Request.Context(), "request failed", "path", c.FullPath(), "error", err)
		writeProblem(c, http.StatusInternalServerError, "Internal error", "")
	}
}
