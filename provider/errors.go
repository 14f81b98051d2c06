package provider

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// standardErrors are the error codes of RFC 6749 §4.1.2.1 and §5.2, RFC
// 7009, RFC 6750 and OpenID Connect Core §3.1.2.6. fosite emits a few
// others, which oauthError maps onto these.
var standardErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
	"access_denied": true, "unsupported_response_type": true, "server_error": true,
	"temporarily_unavailable": true, "unsupported_token_type": true, "invalid_token": true,
	"insufficient_scope": true, "interaction_required": true, "login_required": true,
	"account_selection_required": true, "consent_required": true, "invalid_request_uri": true,
	"invalid_request_object": true, "request_not_supported": true, "request_uri_not_supported": true,
	"registration_not_supported": true,
}

// supportedGrantTypes are the grant types the token endpoint handles.
var supportedGrantTypes = map[string]bool{
	"authorization_code": true, "refresh_token": true, "client_credentials": true,
}

// oauthError converts any error from fosite or storage into a standard
// RFC 6749 error with its HTTP status.
func oauthError(err error, grantType string) *fosite.RFC6749Error {
	if errors.Is(err, storage.ErrUnavailable) {
		return fosite.ErrTemporarilyUnavailable.WithHint("A service Latchkey depends on is unavailable. Retry later.")
	}
	// The loser of two concurrent exchanges of one code, or of two
	// concurrent refreshes of one token, presented a grant that is spent.
	if errors.Is(err, storage.ErrCodeAlreadyUsed) || errors.Is(err, fosite.ErrSerializationFailure) {
		return fosite.ErrInvalidGrant.WithHint("The grant was already used.")
	}
	// fosite reports a code invalidated between its two reads, as when its
	// login session ends during the exchange, as a server error.
	if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		return fosite.ErrInvalidGrant.WithHint("The authorization code was used or revoked.")
	}

	rfc := fosite.ErrorToRFC6749Error(err)
	copied := *rfc
	result := &copied

	if result.ErrorField == "invalid_request" && grantType != "" && !supportedGrantTypes[grantType] {
		result.ErrorField = "unsupported_grant_type"
		result.DescriptionField = "The authorization grant type is not supported by the authorization server."
		result.HintField = ""
	}
	if result.ErrorField == "invalid_grant" && grantType == "client_credentials" {
		// fosite's error for a public client requesting client_credentials.
		result.ErrorField = "unauthorized_client"
	}
	switch result.ErrorField {
	case "invalid_state", "insufficient_entropy", "jti_known", "misconfiguration", "unsupported_response_mode":
		result.ErrorField = "invalid_request"
	case "token_inactive", "scope_not_granted", "request_unauthorized":
		result.ErrorField = "invalid_grant"
	}
	if !standardErrors[result.ErrorField] {
		result.ErrorField = "server_error"
		result.CodeField = http.StatusInternalServerError
	}
	return result
}

// cleanDescription makes a description safe for error_description, whose
// characters RFC 6749 limits to printable ASCII other than '"' and '\', and
// drops markup characters.
func cleanDescription(description string) string {
	var b strings.Builder
	for _, r := range description {
		switch {
		case r == '"':
			b.WriteByte('\'')
		case r == '\\' || r < 0x20 || r > 0x7e:
			continue
		case r == '<' || r == '>' || r == '&':
			// Descriptions may quote request parameters: keep markup out of
			// clients that display them.
			continue
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// writeOAuthError writes an RFC 6749 §5.2 error body with no-store headers.
// invalid_client on 401 carries the WWW-Authenticate challenge RFC 6749
// requires.
func (p *Provider) writeOAuthError(c *gin.Context, err error, grantType string) {
	rfc := oauthError(err, grantType)
	p.logError(c, err, rfc)

	status := rfc.StatusCode()
	if rfc.ErrorField == "invalid_client" {
		status = http.StatusUnauthorized
		c.Header("WWW-Authenticate", `Basic realm="latchkey", charset="UTF-8"`)
	}
	writeErrorJSON(c, status, rfc.ErrorField, rfc.GetDescription())
}

func writeErrorJSON(c *gin.Context, status int, code, description string) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": cleanDescription(description)})
	c.Data(status, "application/json;charset=UTF-8", body)
}

// logError logs server-side failures at Error and client mistakes at Info.
// Debug detail goes only to the log.
func (p *Provider) logError(c *gin.Context, err error, rfc *fosite.RFC6749Error) {
	level := slog.LevelInfo
	if rfc.StatusCode() >= 500 {
		level = slog.LevelError
	}
	p.logger.Log(c.Request.Context(), level, "request rejected",
		"request_id", c.Request.Context().Value(requestIDKey{}),
		"path", c.Request.URL.Path,
		"error_code", rfc.ErrorField,
		"error", err.Error(),
		"debug", fosite.ErrorToRFC6749Error(err).DebugField)
}
