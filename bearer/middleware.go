package bearer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// claimsKey is the gin context key of the verified Claims.
type claimsKey struct{}

// ClaimsFrom returns the claims that Middleware stored for this request.
func ClaimsFrom(c *gin.Context) (*Claims, bool) {
	value, ok := c.Get(claimsKey{})
	if !ok {
		return nil, false
	}
	claims, ok := value.(*Claims)
	return claims, ok
}

// Middleware returns a gin handler that lets a request through only with a
// valid access token in the Authorization header (RFC 6750 §2.1) that was
// granted every scope in requiredScopes. It stores the claims for
// ClaimsFrom. Tokens in a form body are not read, and a token in the
// access_token query parameter is rejected with invalid_request so that
// clients learn to move it to the header.
//
// Failures abort the request with an RFC 9457 problem document and, except
// for 503, an RFC 6750 §3 challenge in WWW-Authenticate:
//
//	401, no error code          no bearer token in the request
//	400 invalid_request         malformed Authorization header, or a query token
//	401 invalid_token           any failure of Verify
//	403 insufficient_scope      a required scope is missing; scope lists them all
//	503                         the keys or the session check are unreachable
//
// Middleware panics if a scope is not a valid scope-token of RFC 6749 §3.3,
// because the scope would break the challenge header.
func (v *Verifier) Middleware(requiredScopes ...string) gin.HandlerFunc {
	for _, scope := range requiredScopes {
		if !isScopeToken(scope) {
			panic(fmt.Sprintf("bearer: required scope %q is not a valid scope-token (RFC 6749 §3.3)", scope))
		}
	}
	required := slices.Clone(requiredScopes)
	scopeList := strings.Join(required, " ")

	return func(c *gin.Context) {
		rawToken, problem := v.tokenFromRequest(c.Request)
		if problem != nil {
			v.abort(c, problem)
			return
		}

		claims, err := v.Verify(c.Request.Context(), rawToken)
		if err != nil {
			v.abort(c, v.verifyProblem(c, err))
			return
		}

		for _, scope := range required {
			if !claims.HasScope(scope) {
				v.cfg.Logger.InfoContext(c.Request.Context(), "access token rejected",
					"reason", "missing scope", "required_scopes", scopeList, "client_id", claims.ClientID)
				v.abort(c, &httpProblem{
					status:    http.StatusForbidden,
					errorCode: "insufficient_scope",
					scope:     scopeList,
					detail:    "The access token lacks a scope this request requires: " + scopeList + ".",
				})
				return
			}
		}

		c.Set(claimsKey{}, claims)
		c.Next()
	}
}

// tokenFromRequest returns the bearer token of the Authorization header, or
// the problem to respond with. The scheme is case-insensitive (RFC 9110
// §11.1) and the token must match b64token (RFC 6750 §2.1).
func (v *Verifier) tokenFromRequest(r *http.Request) (string, *httpProblem) {
	if r.URL.Query().Has("access_token") {
		return "", invalidRequest("Access tokens in the query string are not accepted: send the token in the Authorization header.")
	}

	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", &httpProblem{status: http.StatusUnauthorized, detail: "The request has no bearer access token."}
	}
	if len(values) > 1 {
		return "", invalidRequest("The request has more than one Authorization header.")
	}

	scheme, rest, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &httpProblem{status: http.StatusUnauthorized, detail: "The request has no bearer access token."}
	}
	token := strings.TrimLeft(rest, " ")
	if !isB64Token(token) {
		return "", invalidRequest("The Authorization header must be \"Bearer\", one space and the token.")
	}
	return token, nil
}

// verifyProblem logs a failure of Verify and returns the problem to respond
// with.
func (v *Verifier) verifyProblem(c *gin.Context, err error) *httpProblem {
	ctx := c.Request.Context()

	var rejected *rejection
	if errors.As(err, &rejected) {
		v.cfg.Logger.InfoContext(ctx, "access token rejected", "reason", rejected.description, "error", err)
		return &httpProblem{status: http.StatusUnauthorized, errorCode: "invalid_token", detail: rejected.description}
	}

	v.cfg.Logger.WarnContext(ctx, "access token verification unavailable", "error", err)
	return &httpProblem{
		status:     http.StatusServiceUnavailable,
		detail:     "The access token cannot be verified now because the authorization server or the session store is unreachable. Retry later.",
		retryAfter: int(math.Ceil(v.cfg.MinRefreshInterval.Seconds())),
	}
}

// httpProblem is one failure response: an RFC 9457 problem document and,
// for every status but 503, an RFC 6750 §3 challenge.
type httpProblem struct {
	status int
	// errorCode is the RFC 6750 §3.1 error, empty when the request had no
	// token at all.
	errorCode string
	// scope lists the required scopes of an insufficient_scope challenge.
	scope      string
	detail     string
	retryAfter int // seconds, 0 for none
}

func invalidRequest(detail string) *httpProblem {
	return &httpProblem{status: http.StatusBadRequest, errorCode: "invalid_request", detail: detail}
}

// problemDocument is an RFC 9457 problem document. Its type is about:blank,
// so its title is the HTTP status phrase (§4.2.1).
type problemDocument struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// abort writes p and stops the handler chain.
func (v *Verifier) abort(c *gin.Context, p *httpProblem) {
	if p.status != http.StatusServiceUnavailable {
		c.Header("WWW-Authenticate", v.challenge(p))
	}
	if p.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(p.retryAfter))
	}
	c.Header("Cache-Control", "no-store")

	body, err := json.Marshal(problemDocument{
		Type:   "about:blank",
		Title:  http.StatusText(p.status),
		Status: p.status,
		Detail: p.detail,
	})
	if err != nil {
		// A struct of strings and an int always marshals.
		panic(err)
	}
	c.Abort()
	c.Data(p.status, "application/problem+json", body)
}

// challenge builds the WWW-Authenticate value of RFC 6750 §3. Every value
// is a quotable string: the realm is checked by New, scopes by Middleware,
// and descriptions are constants of this package.
func (v *Verifier) challenge(p *httpProblem) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="`)
	b.WriteString(v.cfg.Realm)
	b.WriteByte('"')
	if p.errorCode != "" {
		b.WriteString(`, error="`)
		b.WriteString(p.errorCode)
		b.WriteString(`", error_description="`)
		b.WriteString(quotable(p.detail))
		b.WriteByte('"')
	}
	if p.scope != "" {
		b.WriteString(`, scope="`)
		b.WriteString(p.scope)
		b.WriteByte('"')
	}
	return b.String()
}

// quotable replaces the characters that error_description may not contain
// (RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E) as a safeguard.
func quotable(s string) string {
	if isQuotable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '"':
			b.WriteByte('\'')
		case ch < 0x20 || ch > 0x7e || ch == '\\':
			b.WriteByte('?')
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// isB64Token reports whether s matches the b64token syntax of RFC 6750
// §2.1: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	end := len(strings.TrimRight(s, "="))
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		ch := s[i]
		isAlphaNumeric := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
		if !isAlphaNumeric && !strings.ContainsRune("-._~+/", rune(ch)) {
			return false
		}
	}
	return true
}

// isScopeToken reports whether s is a scope-token of RFC 6749 §3.3:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x21 || ch > 0x7e || ch == '"' || ch == '\\' {
			return false
		}
	}
	return true
}
