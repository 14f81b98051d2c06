package provider

import (
	"context"
	"errors"
	"net/http"
	"net/url"
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
	// A client_id in the body must name the client that authenticates.
	if basicID, _, ok := c.Request.BasicAuth(); ok && c.Request.PostForm.Has("client_id") {
		if decoded, err := url.QueryUnescape(basicID); err != nil || decoded != c.Request.PostForm.Get("client_id") {
			p.writeOAuthError(c, fosite.ErrInvalidRequest.WithHint("The client_id differs from the authenticated client."), grantType)
			return
		}
	}

	ar, err := p.oauth2.NewAccessRequest(ctx, c.Request, session)
	if err != nil {
		p.auditTokenError(c, ar, err)
		p.writeOAuthError(c, err, grantType)
		return
	}

	if ar.GetGrantTypes().ExactOne("client_credentials") {
		p.prepareClientCredentials(ar, session)
	} else if err := p.refreshPerson(ctx, ar); err != nil {
		p.writeOAuthError(c, err, grantType)
		return
	}

	response, err := p.newAccessResponse(ctx, ar)
	if err != nil {
		p.auditTokenError(c, ar, err)
		p.revokeRaceLoser(c, ar, err)
		p.writeOAuthError(c, err, grantType)
		return
	}
	p.oauth2.WriteAccessResponse(ctx, c.Writer, ar, response)
}

// newAccessResponse runs fosite's token handlers in one transaction. A code
// exchange or refresh then writes all of its records (spent code, tokens,
// deleted OpenID Connect session) or none, so a failure while signing the
// ID token leaves no spent code behind. fosite's own
// transactions join this one. NewAccessRequest stays outside it, because
// fosite revokes a reused refresh token's grant there and that must
// persist although the request fails.
func (p *Provider) newAccessResponse(ctx context.Context, ar fosite.AccessRequester) (fosite.AccessResponder, error) {
	txCtx, err := p.store.BeginTX(ctx)
	if err != nil {
		return nil, err
	}
	response, err := p.oauth2.NewAccessResponse(txCtx, ar)
	if err != nil {
		if rollbackErr := p.store.Rollback(txCtx); rollbackErr != nil {
			p.logger.ErrorContext(ctx, "rollback of token transaction failed", "error", rollbackErr)
		}
		return nil, err
	}
	if err := p.store.Commit(txCtx); err != nil {
		return nil, err
	}
	return response, nil
}

// revokeRaceLoser revokes the whole grant when a request lost a race for
// the same code or refresh token. Presenting a spent code or refresh token
// is reuse (RFC 6749 §4.1.2 and §10.4) whether the other request
// finished first or ran alongside, so the grant's tokens, the winner's
// included, are revoked as fosite does for sequential reuse. fosite rolled
// its transaction back before returning, so this runs outside it.
func (p *Provider) revokeRaceLoser(c *gin.Context, ar fosite.AccessRequester, err error) {
	if !errors.Is(err, storage.ErrCodeAlreadyUsed) && !errors.Is(err, storage.ErrRefreshTokenAlreadyRotated) {
		return
	}
	ctx := c.Request.Context()
	grantID := ar.GetID()
	revokeErr := errors.Join(p.store.RevokeRefreshToken(ctx, grantID), p.store.RevokeAccessToken(ctx, grantID))
	if revokeErr != nil {
		p.logger.ErrorContext(ctx, "revoke grant after concurrent reuse failed", "grant_id", grantID, "error", revokeErr)
		return
	}
	p.logger.WarnContext(ctx, "grant revoked after concurrent reuse", "grant_id", grantID, "client_id", ar.GetClient().GetID())
}

// personScopes describe a person, so a client acting for itself is never
// granted them.
var personScopes = map[string]bool{
	"openid": true, "offline_access": true, "profile": true, "email": true, "phone": true, "address": true, ScopeRoles: true,
	"account": true, "admin": true,
}

// prepareClientCredentials grants what fosite validated but leaves to the
// caller for the client_credentials grant. The client acts for itself, so
// it is the subject. Scopes that only make sense with a person behind them
// are not granted.
func (p *Provider) prepareClientCredentials(ar fosite.AccessRequester, session *Session) {
	for _, scope := range ar.GetRequestedScopes() {
		if !personScopes[scope] {
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
// as a confidential client with HTTP Basic or a client assertion
// (client_secret_jwt, private_key_jwt). RFC 7662 §4 recommends that the server
// limit what each caller may learn, so a token is reported active only to
// the client it was issued to and to clients its audience names: resource
// servers registered as clients. Any other token reads as inactive.
func (p *Provider) introspect(c *gin.Context) {
	ctx := c.Request.Context()
	callerID, _, hasBasic := c.Request.BasicAuth()
	if !hasBasic && c.Request.PostForm.Get("client_assertion_type") != "" {
		p.introspectWithAssertion(c)
		return
	}
	if !hasBasic {
		p.writeOAuthError(c, fosite.ErrInvalidClient.WithHint("Authenticate with HTTP Basic or a client assertion as a confidential client."), "")
		return
	}
	callerID, err := url.QueryUnescape(callerID)
	if err != nil {
		p.writeOAuthError(c, fosite.ErrInvalidClient.WithHint("The client id is not form-encoded correctly."), "")
		return
	}
	// fosite checks the Basic credentials without looking at how the client
	// registered to authenticate. A client_secret_jwt secret must never be
	// sent as a password.
	if caller, err := p.store.GetClientByID(ctx, callerID); err == nil &&
		caller.TokenEndpointAuthMethod != "client_secret_basic" && caller.TokenEndpointAuthMethod != "client_secret_post" {
		p.writeOAuthError(c, fosite.ErrInvalidClient.WithHintf("This client authenticates with %s, not HTTP Basic.", caller.TokenEndpointAuthMethod), "")
		return
	} else if errors.Is(err, storage.ErrUnavailable) {
		p.writeOAuthError(c, err, "")
		return
	}

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
		writeIntrospection(c, map[string]any{"active": false})
		return
	}

	request := response.GetAccessRequester()
	if response.IsActive() && request.GetClient().GetID() != callerID && !request.GetGrantedAudience().Has(callerID) {
		writeIntrospection(c, map[string]any{"active": false})
		return
	}
	writeIntrospection(c, introspectionBody(response))
}

func writeIntrospection(c *gin.Context, body map[string]any) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.JSON(http.StatusOK, body)
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
	if c.Request.PostForm.Get("token") == "" {
		p.writeOAuthError(c, fosite.ErrInvalidRequest.WithHint("The token parameter is required."), "")
		return
	}
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
	if err == nil {
		callerID, _, _ := c.Request.BasicAuth()
		if callerID == "" {
			callerID = c.Request.PostForm.Get("client_id")
		}
		callerID, _ = url.QueryUnescape(callerID)
		p.audit(ctx, newAuditEvent(c, storage.ActorClient, callerID, "", auditTokenRevoked, storage.OutcomeSuccess,
			map[string]any{"token_type_hint": c.Request.PostForm.Get("token_type_hint")}))
	}
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
}

// errNotBearer means the request carries credentials of another scheme: to
// a resource server that is no credentials at all (RFC 6750 §3.1).
var errNotBearer = errors.New("the Authorization header does not use the Bearer scheme")

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
			return "", errNotBearer
		}
		if fromForm != "" {
			return "", errors.New("send the access token in one place only")
		}
		return strings.TrimSpace(value), nil
	}
	return fromForm, nil
}

// refreshPerson checks, for a grant with a person behind it, that the
// person may still have tokens, and brings the claims the new tokens carry
// up to date: roles and profile claims may have changed since the grant.
//
// fosite replaces the session it was given with a copy of the stored one on
// refresh, so the request's own session is the one to change.
func (p *Provider) refreshPerson(ctx context.Context, ar fosite.AccessRequester) error {
	session, ok := ar.GetSession().(*Session)
	if !ok || !session.ForPerson() {
		return nil
	}
	user, err := p.store.GetUser(ctx, session.GetSubject())
	if errors.Is(err, fosite.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The user no longer exists.")
	}
	if err != nil {
		return err
	}
	if user.Disabled {
		return fosite.ErrInvalidGrant.WithHint("The user account is disabled.")
	}
	// A refresh is activity in the login session and keeps it alive. A
	// session can also end on its own, idle or at its absolute end; a
	// logout instead revokes the grant. What it leaves is an offline grant
	// (OpenID Connect Core §11), whose tokens no longer name the session, so
	// the APIs' session check does not reject them.
	switch err := p.touchLoginSession(ctx, session.LoginSessionID); {
	case errors.Is(err, fosite.ErrNotFound):
		if !ar.GetGrantedScopes().Has("offline_access") {
			return fosite.ErrInvalidGrant.WithHint("The login session of this grant has ended.")
		}
		session.LoginSessionID = ""
		delete(session.IDTokenClaims().Extra, "sid")
	case err != nil:
		return err
	}

	roles, err := p.roleNames(ctx, user.ID)
	if err != nil {
		return err
	}
	if session.Roles != nil {
		session.Roles = roles
	}
	claims := session.IDTokenClaims()
	if claims.Extra == nil {
		claims.Extra = map[string]interface{}{}
	}
	for name, value := range userClaims(user, roles, ar.GetGrantedScopes()) {
		if name != "sub" {
			claims.Extra[name] = value
		}
	}
	return nil
}

// touchLoginSession marks activity in a grant's login session. An offline
// grant that outlived its session names none, which reads as ended.
func (p *Provider) touchLoginSession(ctx context.Context, sessionID string) error {
	if sessionID == "" {
		return fosite.ErrNotFound
	}
	return p.sessions.Touch(ctx, sessionID)
}
