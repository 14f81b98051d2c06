package provider

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// userinfo is the UserInfo endpoint (OpenID Connect Core §5.3). It accepts
// an access token granted the openid scope and returns the claims its
// scopes release. Errors follow RFC 6750 §3.
func (p *Provider) userinfo(c *gin.Context) {
	ctx := c.Request.Context()
	token, err := bearerToken(c.Request)
	if errors.Is(err, errNotBearer) {
		token = ""
	} else if err != nil {
		writeBearerError(c, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if token == "" {
		// RFC 6750 §3.1: a request without credentials gets the challenge
		// alone, with no error code.
		c.Header("WWW-Authenticate", `Bearer realm="latchkey"`)
		c.Header("Cache-Control", "no-store")
		c.Status(http.StatusUnauthorized)
		return
	}

	tokenUse, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.AccessToken, newSession(), "openid")
	if err == nil && tokenUse != fosite.AccessToken {
		// fosite falls back to refresh tokens. Those are for the token
		// endpoint only (RFC 6749 §1.5), never for resource servers.
		writeBearerError(c, http.StatusUnauthorized, "invalid_token", "The token is not an access token.")
		return
	}
	if err != nil {
		switch {
		case errors.Is(err, storage.ErrUnavailable):
			p.writeOAuthError(c, err, "")
		case fosite.ErrorToRFC6749Error(err).ErrorField == "insufficient_scope",
			errors.Is(err, fosite.ErrInvalidScope):
			writeBearerError(c, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		default:
			writeBearerError(c, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		}
		return
	}

	session, ok := ar.GetSession().(*Session)
	if !ok || !session.ForPerson() {
		writeBearerError(c, http.StatusUnauthorized, "invalid_token", "The access token was not issued to a person.")
		return
	}
	user, err := p.store.GetUser(ctx, session.GetSubject())
	if errors.Is(err, fosite.ErrNotFound) {
		writeBearerError(c, http.StatusUnauthorized, "invalid_token", "The user of this access token no longer exists.")
		return
	}
	if err != nil {
		p.writeOAuthError(c, err, "")
		return
	}

	if user.Disabled {
		writeBearerError(c, http.StatusUnauthorized, "invalid_token", "The user of this access token is disabled.")
		return
	}
	roles, err := p.roleNames(ctx, user.ID)
	if err != nil {
		p.writeOAuthError(c, err, "")
		return
	}

	claims := userClaims(user, roles, ar.GetGrantedScopes())
	if len(session.UserinfoClaims) > 0 {
		// Consent covered these when the grant was made (consentScopes).
		all := userClaims(user, roles, fosite.Arguments(slices.Collect(maps.Values(claimScopes))))
		maps.Copy(claims, pickClaims(all, session.UserinfoClaims))
	}
	p.writeUserinfo(c, ar, claims)
}

// writeBearerError writes an RFC 6750 §3 error: the WWW-Authenticate
// challenge and the same error as JSON.
func writeBearerError(c *gin.Context, status int, code, description string) {
	description = cleanDescription(description)
	c.Header("WWW-Authenticate", fmt.Sprintf(`Bearer realm="latchkey", error=%q, error_description=%q`, code, description))
	if code == "insufficient_scope" {
		c.Header("WWW-Authenticate", fmt.Sprintf(`Bearer realm="latchkey", error=%q, error_description=%q, scope="openid"`, code, description))
	}
	writeErrorJSON(c, status, code, description)
}

// writeUserinfo writes the claims as JSON, or as a signed JWT when the
// client registered userinfo_signed_response_alg (OpenID Connect Core
// §5.3.2). The JWT carries iss, the client as aud, and iat, but no nonce or
// exp.
func (p *Provider) writeUserinfo(c *gin.Context, ar fosite.Requester, claims map[string]any) {
	c.Header("Cache-Control", "no-store")
	client, _ := ar.GetClient().(*storage.Client)
	if client == nil || client.Metadata.UserinfoSignedResponseAlg == "" {
		c.JSON(http.StatusOK, claims)
		return
	}
	signed := maps.Clone(claims)
	signed["iss"] = p.cfg.Issuer
	signed["aud"] = client.ID
	signed["iat"] = p.now().Unix()
	token, err := p.keys.SignJWT(c.Request.Context(), client.Metadata.UserinfoSignedResponseAlg, signed, nil)
	if err != nil {
		p.writeOAuthError(c, fosite.ErrServerError.WithWrap(err).WithDebug("sign userinfo"), "")
		return
	}
	c.Data(http.StatusOK, "application/jwt", []byte(token))
}
