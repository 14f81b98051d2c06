package provider

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// token is the token endpoint (RFC 6749 §3.2): authorization_code (with
// PKCE, RFC 7636), refresh_token (rotating) and client_credentials.
func (p *Provider) token(c *gin.Context) {
	ctx := c.Request.Context()
	grantType := c.Request.PostForm.Get("grant_type")
	session := newSession()

	// RFC 6749 §5.2 names a request without client authentication
	// invalid_client, but fosite calls it invalid_request.
	if c.GetHeader("Authorization") == "" && c.Request.PostForm.Get("client_id") == "" &&
		c.Request.PostForm.Get("client_assertion") == "" {
		p.writeOAuthError(c, fosite.ErrInvalidClient.WithHint("The request carries no client authentication."), grantType)
		return
	}

	ar, err := p.oauth2.NewAccessRequest(ctx, c.Request, session)
	if err != nil {
		p.writeOAuthError(c, err, grantType)
		return
	}

	if ar.GetGrantTypes().ExactOne("client_credentials") {
		p.prepareClientCredentials(ar, session)
	}

	response, err := p.oauth2.NewAccessResponse(ctx, ar)
	if err != nil {
		p.writeOAuthError(c, err, grantType)
		return
	}
	p.oauth2.WriteAccessResponse(ctx, c.Writer, ar, response)
}

// prepareClientCredentials grants what fosite validated but leaves to the
// caller for the client_credentials grant. The client acts for itself, so
// it is the subject. Scopes that only make sense with a person behind them
// are not granted.
func (p *Provider) prepareClientCredentials(ar fosite.AccessRequester, session *Session) {
	for _, scope := range ar.GetRequestedScopes() {
		if scope != "openid" && scope != "offline_access" {
			ar.GrantScope(scope)
		}
	}
	p.grantAudience(ar)

	clientID := ar.GetClient().GetID()
	session.Subject = clientID
	session.ClientID = clientID
	session.Issuer = p.cfg.Issuer
}

// introspect is the RFC 7662 introspection endpoint. Callers authenticate
// as a client (HTTP Basic) or with an access token.
func (p *Provider) introspect(c *gin.Context) {
	ctx := c.Request.Context()
	response, err := p.oauth2.NewIntrospectionRequest(ctx, c.Request, newSession())
	if err != nil && errors.Is(err, storage.ErrUnavailable) {
		p.writeOAuthError(c, err, "")
		return
	}
	if err != nil {
		rfc := fosite.ErrorToRFC6749Error(err)
		p.logError(c, err, rfc)
		if rfc.ErrorField == "invalid_client" || rfc.ErrorField == "request_unauthorized" {
			p.writeOAuthError(c, fosite.ErrInvalidClient.WithWrap(err), "")
			return
		}
		if rfc.ErrorField == "invalid_request" {
			p.writeOAuthError(c, err, "")
			return
		}
		// Any other failure means the token is not active (RFC 7662 §2.2).
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, gin.H{"active": false})
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.JSON(http.StatusOK, introspectionBody(response))
}

// introspectionBody builds the RFC 7662 §2.2 response. fosite's own writer
// reports the access token's expiry for refresh tokens too. This one takes
// the expiry of the token that was presented.
func introspectionBody(response fosite.IntrospectionResponder) map[string]any {
	if !response.IsActive() {
		return map[string]any{"active": false}
	}
	request := response.GetAccessRequester()
	session := request.GetSession()
	body := map[string]any{
		"active":    true,
		"client_id": request.GetClient().GetID(),
		"iat":       request.GetRequestedAt().Unix(),
	}

	kind := fosite.AccessToken
	body["token_type"] = "Bearer"
	body["token_use"] = "access_token"
	if response.GetTokenUse() == fosite.RefreshToken {
		kind = fosite.RefreshToken
		delete(body, "token_type")
		body["token_use"] = "refresh_token"
	}
	if expiresAt := session.GetExpiresAt(kind); !expiresAt.IsZero() {
		body["exp"] = expiresAt.Unix()
	}
	if scopes := request.GetGrantedScopes(); len(scopes) > 0 {
		body["scope"] = strings.Join(scopes, " ")
	}
	if audience := request.GetGrantedAudience(); len(audience) > 0 {
		body["aud"] = audience
	}
	if subject := session.GetSubject(); subject != "" {
		body["sub"] = subject
	}
	if username := session.GetUsername(); username != "" {
		body["username"] = username
	}
	if extra, ok := session.(fosite.ExtraClaimsSession); ok {
		for name, value := range extra.GetExtraClaims() {
			body[name] = value
		}
	}
	return body
}

// revoke is the RFC 7009 revocation endpoint. Revoking an unknown or
// already revoked token succeeds, as §2.2 requires.
func (p *Provider) revoke(c *gin.Context) {
	ctx := c.Request.Context()
	err := p.oauth2.NewRevocationRequest(ctx, c.Request)
	if err != nil && errors.Is(err, storage.ErrUnavailable) {
		p.writeOAuthError(c, err, "")
		return
	}
	if err != nil {
		rfc := fosite.ErrorToRFC6749Error(err)
		switch rfc.ErrorField {
		case "invalid_client", "invalid_request", "unauthorized_client", "unsupported_token_type":
			p.writeOAuthError(c, err, "")
			return
		}
		if rfc.StatusCode() >= 500 {
			p.writeOAuthError(c, err, "")
			return
		}
	}
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
}

// bearerToken extracts an access token as RFC 6750 §2 allows: in the
// Authorization header (scheme matched case-insensitively) or, for a form
// POST, in the access_token body parameter. Using both is an error.
func bearerToken(r *http.Request) (token string, err error) {
	header := r.Header.Get("Authorization")
	fromForm := ""
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		fromForm = r.PostForm.Get("access_token")
	}
	if r.URL.Query().Has("access_token") {
		return "", errors.New("access tokens in the query string are not accepted")
	}

	if header != "" {
		scheme, value, found := strings.Cut(header, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(value) == "" {
			return "", errors.New("the Authorization header must use the Bearer scheme")
		}
		if fromForm != "" {
			return "", errors.New("send the access token in one place only")
		}
		return strings.TrimSpace(value), nil
	}
	return fromForm, nil
}
