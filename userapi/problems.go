package userapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/httpapi"
	"github.com/latchkey/latchkey/storage"
)

// fieldError is one invalid field of a request.
type fieldError = httpapi.FieldError

// writeProblem responds with an RFC 9457 problem document.
func writeProblem(c *gin.Context, status int, summary, detail string, fields ...fieldError) {
	httpapi.WriteProblem(c, status, summary, detail, fields...)
}

// fieldErrors collects validation failures so that one response names
// every bad field.
type fieldErrors []fieldError

func (f *fieldErrors) add(field, detail string) {
	*f = append(*f, fieldError{Field: field, Detail: detail})
}

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
