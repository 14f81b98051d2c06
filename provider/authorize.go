package provider

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/storage"
)

// authorize is the authorization endpoint (RFC 6749 §3.1, OpenID Connect
// Core §3.1.2). It validates the request with fosite, then sends the
// person through login and consent as needed and issues the code.
func (p *Provider) authorize(c *gin.Context) {
	ctx := c.Request.Context()
	// The form is parsed here, multipart bodies included, so that
	// expandRequestObject reads every parameter fosite reads. fosite then
	// never receives a request or request_uri parameter.
	if err := c.Request.ParseMultipartForm(maxAuthorizeBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		p.renderOAuthErrorPage(c, fosite.ErrInvalidRequest.WithHint("The request parameters could not be parsed."))
		return
	}
	objectErr := p.expandRequestObject(ctx, c.Request.Form)
	ar, err := p.oauth2.NewAuthorizeRequest(ctx, c.Request)
	if objectErr != nil {
		err = objectErr
	}
	if err != nil {
		p.writeAuthorizeError(c, ar, err)
		return
	}
	if err := checkRedirectURI(ar); err != nil {
		p.renderOAuthErrorPage(c, err)
		return
	}
	if prompts := promptValues(ar.GetRequestForm()); slices.Contains(prompts, "none") && len(prompts) > 1 {
		p.writeAuthorizeError(c, ar, fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other prompt values."))
		return
	}
	if err := checkPKCEPolicy(ar); err != nil {
		p.writeAuthorizeError(c, ar, err)
		return
	}
	if _, err := parseClaimsRequest(ar.GetRequestForm().Get("claims")); err != nil {
		p.writeAuthorizeError(c, ar, err)
		return
	}
	if err := checkResponseType(ar); err != nil {
		p.writeAuthorizeError(c, ar, err)
		return
	}
	if nonce := ar.GetRequestForm().Get("nonce"); nonce != "" && len(nonce) < fosite.MinParameterEntropy {
		// fosite would reject a short nonce only at the token endpoint,
		// after the person signed in and the code was spent.
		p.writeAuthorizeError(c, ar, fosite.ErrInvalidRequest.WithHintf("The nonce must be at least %d characters long.", fosite.MinParameterEntropy))
		return
	}

	now := p.now().UTC().Truncate(time.Second)
	flow := &authFlow{
		Form:        authorizationParameters(c.Request.Form),
		RequestedAt: now,
		ExpiresAt:   now.Add(flowLifetime),
	}
	session, err := p.currentLoginSession(c)
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}
	p.continueFlow(c, ar, flow, session)
}

// checkResponseType runs, before the person signs in, the implicit and
// hybrid checks that fosite runs only afterwards. An ID token from the
// authorization endpoint needs a nonce (OpenID Connect Core §3.2.2.1,
// §3.3.2.11), and tokens there need a client registered for the implicit
// grant. Tokens never go in the query, where they would reach logs and
// Referer headers (OAuth 2.0 Multiple Response Type Encoding Practices §5).
func checkResponseType(ar fosite.AuthorizeRequester) error {
	types := ar.GetResponseTypes()
	if types.ExactOne("code") {
		return nil
	}
	if types.Has("id_token") && ar.GetRequestForm().Get("nonce") == "" {
		return fosite.ErrInvalidRequest.WithHint("The nonce parameter is required when an ID token is returned from the authorization endpoint.")
	}
	if ar.GetResponseMode() == fosite.ResponseModeQuery {
		return fosite.ErrInvalidRequest.WithHint("This response_type cannot use response_mode=query: use fragment or form_post.")
	}
	if (types.Has("token") || !types.Has("code")) && !ar.GetClient().GetGrantTypes().Has("implicit") {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not registered for the implicit grant.")
	}
	return nil
}

// maxAuthorizeBody bounds the memory a multipart authorization request may
// take, as fosite does.
const maxAuthorizeBody = 1 << 20

// checkPKCEPolicy enforces the per-client PKCE rules before the person is
// sent to the login page, where fosite would check them only afterwards:
// public clients must use S256, and confidential clients may use "plain"
// only if registered with AllowPlainPKCE. A challenge without a method is
// "plain" (RFC 7636 §4.3).
func checkPKCEPolicy(ar fosite.AuthorizeRequester) error {
	if !ar.GetResponseTypes().Has("code") {
		return nil
	}
	form := ar.GetRequestForm()
	client, _ := ar.GetClient().(*storage.Client)
	if form.Get("code_challenge") == "" {
		if client == nil || client.Public {
			return fosite.ErrInvalidRequest.WithHint("Public clients must send a PKCE code_challenge with method S256.")
		}
		return nil
	}
	method := form.Get("code_challenge_method")
	if method == "" {
		method = "plain"
	}
	switch {
	case method == "S256":
		return nil
	case method != "plain":
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256.")
	case client == nil || client.Public || !client.AllowPlainPKCE:
		return fosite.ErrInvalidRequest.WithHint("This client must use code_challenge_method S256.")
	}
	return nil
}

// writeAuthorizeError responds to an invalid authorization request. Only when
// fosite has confirmed the client and its redirect_uri does the error go
// back to the client by redirect. Otherwise the person gets an error page.
func (p *Provider) writeAuthorizeError(c *gin.Context, ar fosite.AuthorizeRequester, err error) {
	if ar == nil || !ar.IsRedirectURIValid() || checkRedirectURI(ar) != nil {
		p.renderOAuthErrorPage(c, err)
		return
	}
	rfc := oauthError(err, "")
	p.logError(c, err, rfc)
	params := url.Values{"error": {rfc.ErrorField}}
	if description := cleanDescription(rfc.GetDescription()); description != "" {
		params.Set("error_description", description)
	}
	if state := ar.GetState(); state != "" {
		params.Set("state", state)
	}
	p.sendAuthorizationResponse(c, ar, params)
}

// knownParameters are the authorization request parameters a paused flow
// keeps (RFC 6749 §4.1.1, RFC 7636 §4.3, OpenID Connect Core §3.1.2.1).
// Others are dropped, so that padding cannot make the flow too large to
// travel in a URL.
var knownParameters = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "response_mode", "nonce", "display",
	"prompt", "max_age", "ui_locales", "id_token_hint", "login_hint", "acr_values", "claims_locales",
	"code_challenge", "code_challenge_method", "audience", "claims",
}

func authorizationParameters(form url.Values) url.Values {
	kept := url.Values{}
	for _, name := range knownParameters {
		if values, ok := form[name]; ok {
			kept[name] = slices.Clone(values)
		}
	}
	return kept
}

// checkRedirectURI requires the redirect_uri to equal a registered one,
// character for character (RFC 9700 §4.1.3). fosite also accepts any port,
// user information and percent-encoding variants on loopback hosts. Only a
// public client's loopback URI may differ, and only in its port, as native
// apps need (RFC 8252 §7.3).
func checkRedirectURI(ar fosite.AuthorizeRequester) error {
	requested := ar.GetRequestForm().Get("redirect_uri")
	client, ok := ar.GetClient().(*storage.Client)
	if requested == "" || !ok || slices.Contains(client.RedirectURIs, requested) {
		return nil
	}
	if client.Public {
		for _, registered := range client.RedirectURIs {
			if loopbackPortVariant(registered, requested) {
				return nil
			}
		}
	}
	return fosite.ErrInvalidRequest.WithHint("The redirect_uri is not registered for this client.")
}

// loopbackPortVariant reports whether requested is registered with only its
// port changed, on a loopback IP literal over http.
func loopbackPortVariant(registered, requested string) bool {
	r, err := url.Parse(registered)
	if err != nil {
		return false
	}
	q, err := url.Parse(requested)
	if err != nil {
		return false
	}
	loopback := r.Hostname() == "127.0.0.1" || r.Hostname() == "::1"
	return loopback && r.Scheme == "http" && q.Scheme == "http" && q.User == nil && q.Fragment == "" &&
		q.Hostname() == r.Hostname() && q.EscapedPath() == r.EscapedPath() && q.RawQuery == r.RawQuery &&
		strings.HasPrefix(requested, "http://"+q.Host)
}

// resumeRequest validates a paused flow's parameters with fosite again, as
// if the client had just sent them.
func (p *Provider) resumeRequest(ctx context.Context, flow *authFlow) (fosite.AuthorizeRequester, error) {
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, "/oauth2/auth?"+flow.Form.Encode(), nil)
	if err != nil {
		return nil, err
	}
	ar, err := p.oauth2.NewAuthorizeRequest(ctx, request)
	if err != nil {
		return ar, err
	}
	if request, ok := ar.(*fosite.AuthorizeRequest); ok {
		request.RequestedAt = flow.RequestedAt
	}
	return ar, nil
}

// currentLoginSession returns the live login session named by the session
// cookie, or nil when there is none or it has ended. Any other session
// store error is returned.
func (p *Provider) currentLoginSession(c *gin.Context) (*storage.LoginSession, error) {
	secret, err := c.Cookie(p.cookieName(sessionCookieName))
	if err != nil || secret == "" {
		return nil, nil
	}
	session, err := p.sessions.Get(c.Request.Context(), loginSessionID(secret))
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return session, nil
}

// loginSessionID derives a login session's public id, the "sid" claim, from
// the secret in its cookie. The id is a SHA-256 hash of the secret, so that
// tokens, logs and the session list can name a session without giving
// anyone who reads them the means to use it.
func loginSessionID(cookieSecret string) string {
	return base64.RawURLEncoding.EncodeToString(sha256Sum([]byte(cookieSecret)))
}

// renderUnavailable shows a 503 page for a dependency that is down. It
// never redirects, because the person can retry from here once it is back.
func (p *Provider) renderUnavailable(c *gin.Context, err error) {
	p.logger.ErrorContext(c.Request.Context(), "dependency unavailable", "path", c.Request.URL.Path, "error", err)
	c.Header("Retry-After", "5")
	p.renderError(c, http.StatusServiceUnavailable, "Sign-in is unavailable right now. Try again in a moment.", "temporarily_unavailable")
}

func promptValues(form url.Values) []string {
	return strings.Fields(form.Get("prompt"))
}

// needsLogin decides whether the person must authenticate (again) before
// this request can go on.
func (p *Provider) needsLogin(flow *authFlow, session *storage.LoginSession) bool {
	if session == nil {
		return true
	}
	if flow.LoggedIn {
		return false
	}
	// The claims parameter may name the only user a code may be issued for.
	if sub := requestedSubject(flow.Form); sub != "" && sub != session.UserID {
		return true
	}
	// Latchkey has no account chooser, so select_account shows the login
	// form, where the person signs in with the account of their choice.
	// OpenID Connect Core §3.1.2.1 requires a prompt for the account.
	if prompts := promptValues(flow.Form); slices.Contains(prompts, "login") || slices.Contains(prompts, "select_account") {
		return true
	}
	if maxAge, err := strconv.ParseInt(flow.Form.Get("max_age"), 10, 64); err == nil && maxAge >= 0 {
		return p.now().Sub(session.AuthTime) > time.Duration(maxAge)*time.Second
	}
	return false
}

// continueFlow takes a validated authorization request as far as it can:
// to the login page, the consent page, or the issued code.
func (p *Provider) continueFlow(c *gin.Context, ar fosite.AuthorizeRequester, flow *authFlow, session *storage.LoginSession) {
	ctx := c.Request.Context()
	prompts := promptValues(flow.Form)

	if p.needsLogin(flow, session) {
		if slices.Contains(prompts, "none") {
			p.writeAuthorizeError(c, ar, fosite.ErrLoginRequired.WithHint("The user is not signed in."))
			return
		}
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusSeeOther, "/login?flow="+url.QueryEscape(p.sealFlow(flow)))
		return
	}
	if wantsMFA(flow) && !session.UsedMFA() {
		hasMFA, err := p.userHasMFA(ctx, session.UserID)
		if err != nil {
			p.renderUnavailable(c, err)
			return
		}
		// A user without a second factor gets the password class in acr,
		// which the client may reject; acr_values is a request, not a rule.
		if hasMFA {
			if slices.Contains(prompts, "none") {
				p.writeAuthorizeError(c, ar, fosite.ErrInteractionRequired.WithHint("The client asked for a second factor."))
				return
			}
			p.startMFA(c, flow, session.UserID, session.ID)
			return
		}
	}
	if err := p.sessions.Touch(ctx, session.ID); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		p.renderUnavailable(c, err)
		return
	}

	client, ok := ar.GetClient().(*storage.Client)
	if !ok {
		p.writeAuthorizeError(c, ar, fosite.ErrServerError.WithDebug("unexpected client type"))
		return
	}
	if !client.FirstParty {
		consented, err := p.hasConsent(ctx, session.UserID, client.ID, consentScopes(flow.Form, client))
		if err != nil {
			p.writeAuthorizeError(c, ar, err)
			return
		}
		if !consented || slices.Contains(prompts, "consent") {
			if slices.Contains(prompts, "none") {
				p.writeAuthorizeError(c, ar, fosite.ErrConsentRequired.WithHint("The user has not approved this client."))
				return
			}
			flow.LoginSessionID = session.ID
			c.Header("Cache-Control", "no-store")
			c.Redirect(http.StatusSeeOther, "/consent?flow="+url.QueryEscape(p.sealFlow(flow)))
			return
		}
	}

	p.issueCode(c, ar, flow, session)
}

func (p *Provider) hasConsent(ctx context.Context, userID, clientID string, scopes []string) (bool, error) {
	consent, err := p.store.GetConsent(ctx, userID, clientID)
	if errors.Is(err, fosite.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, scope := range scopes {
		if !slices.Contains(consent.Scopes, scope) {
			return false, nil
		}
	}
	return true, nil
}

// issueCode grants the requested scopes, builds the session the tokens
// will carry and lets fosite issue the authorization code.
func (p *Provider) issueCode(c *gin.Context, ar fosite.AuthorizeRequester, flow *authFlow, session *storage.LoginSession) {
	ctx := c.Request.Context()
	user, err := p.store.GetUser(ctx, session.UserID)
	if err != nil {
		p.writeAuthorizeError(c, ar, fosite.ErrServerError.WithWrap(err).WithDebug("load user of login session"))
		return
	}
	if user.Disabled {
		p.writeAuthorizeError(c, ar, fosite.ErrAccessDenied.WithHint("The user account is disabled."))
		return
	}
	if sub := requestedSubject(flow.Form); sub != "" && sub != user.ID {
		p.writeAuthorizeError(c, ar, fosite.ErrAccessDenied.WithHint("The signed-in user is not the subject the claims parameter requested."))
		return
	}
	// An essential acr that cannot be met is a failed authentication
	// (OpenID Connect Core §5.5.1.1).
	if values, essential := requestedACRValues(flow.Form); essential && !slices.Contains(values, acrFor(session, flow)) {
		p.writeAuthorizeError(c, ar, fosite.ErrAccessDenied.WithHint("The sign-in does not meet the essential acr the claims parameter requested."))
		return
	}
	roles, err := p.roleNames(ctx, user.ID)
	if err != nil {
		p.writeAuthorizeError(c, ar, err)
		return
	}

	// fosite has checked that every requested scope and audience is allowed
	// for the client. Granting is left to the caller.
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	p.grantAudience(ar)

	// Recorded before the code exists, so that a logout from here on
	// reaches this client over the back channel.
	if err := p.sessions.AddClient(ctx, session.ID, ar.GetClient().GetID()); err != nil {
		if errors.Is(err, fosite.ErrNotFound) {
			p.writeAuthorizeError(c, ar, fosite.ErrLoginRequired.WithHint("The login session has ended."))
			return
		}
		p.renderUnavailable(c, err)
		return
	}
	fositeSession := p.userSession(ar, user, roles, session, flow)
	response, err := p.oauth2.NewAuthorizeResponse(ctx, ar, fositeSession)
	if err != nil {
		p.writeAuthorizeError(c, ar, err)
		return
	}
	// A session ended while the code was stored would otherwise leave a
	// code that outlives it: logout revokes only the codes it can see.
	if _, err := p.sessions.Get(ctx, session.ID); err != nil {
		if revokeErr := p.store.RevokeSessionTokens(ctx, session.ID); revokeErr != nil {
			p.logger.ErrorContext(ctx, "revoking the code of an ended session failed", "sid", session.ID, "error", revokeErr)
		}
		if errors.Is(err, fosite.ErrNotFound) {
			p.writeAuthorizeError(c, ar, fosite.ErrLoginRequired.WithHint("The login session has ended."))
			return
		}
		p.renderUnavailable(c, err)
		return
	}
	for name, value := range response.GetHeader() {
		c.Writer.Header()[name] = value
	}
	p.sendAuthorizationResponse(c, ar, response.GetParameters())
}

// roleNames returns the names of a user's roles.
func (p *Provider) roleNames(ctx context.Context, userID string) ([]string, error) {
	roles, err := p.store.UserRoles(ctx, userID)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(roles))
	for _, role := range roles {
		names = append(names, role.Name)
	}
	return names, nil
}

// grantAudience grants the audiences the client requested, or the issuer
// when it requested none, because RFC 9068 requires every access token to
// name its audience. The issuer represents Latchkey's own APIs.
func (p *Provider) grantAudience(ar fosite.Requester) {
	for _, audience := range ar.GetRequestedAudience() {
		ar.GrantAudience(audience)
	}
	if len(ar.GetGrantedAudience()) == 0 {
		ar.GrantAudience(p.cfg.Issuer)
	}
}

// userSession builds the fosite session for a person's grant: ID token
// claims, and what the access token and introspection report. roles are
// the names of the user's roles, released with the "roles" scope.
func (p *Provider) userSession(ar fosite.Requester, user *storage.User, roles []string, login *storage.LoginSession, flow *authFlow) *Session {
	authTime := login.AuthTime.UTC().Truncate(time.Second)
	claims := &jwt.IDTokenClaims{
		Subject:                             user.ID,
		Issuer:                              p.cfg.Issuer,
		AuthTime:                            authTime,
		RequestedAt:                         flow.RequestedAt,
		Nonce:                               flow.Form.Get("nonce"),
		AuthenticationMethodsReferences:     slices.Clone(login.AMR),
		AuthenticationContextClassReference: acrFor(login, flow),
		Extra:                               map[string]interface{}{"sid": login.ID},
	}
	for name, value := range userClaims(user, roles, ar.GetGrantedScopes()) {
		if name != "sub" {
			claims.Extra[name] = value
		}
	}
	// parseClaimsRequest passed when the request arrived.
	requested, _ := parseClaimsRequest(flow.Form.Get("claims"))
	client, _ := ar.GetClient().(*storage.Client)
	var userinfoClaims []string
	if requested != nil && client != nil {
		all := userClaims(user, roles, fosite.Arguments(client.Scopes))
		for name, value := range pickClaims(all, releasable(requested.IDToken, client)) {
			claims.Extra[name] = value
		}
		userinfoClaims = releasable(requested.Userinfo, client)
	}

	session := &Session{
		DefaultSession: &openid.DefaultSession{
			Claims:   claims,
			Headers:  &jwt.Headers{},
			Subject:  user.ID,
			Username: user.Username,
		},
		ClientID:       ar.GetClient().GetID(),
		LoginSessionID: login.ID,
		AuthTime:       authTime,
		AMR:            slices.Clone(login.AMR),
		ACR:            claims.AuthenticationContextClassReference,
		Issuer:         p.cfg.Issuer,
		UserinfoClaims: userinfoClaims,
	}
	if ar.GetGrantedScopes().Has(ScopeRoles) {
		session.Roles = slices.Clone(roles)
	}
	return session
}

// ScopeRoles releases the "roles" claim: the names of the user's roles.
const ScopeRoles = "roles"

// userClaims returns the standard claims (OpenID Connect Core §5.4) that
// the granted scopes release, and the "roles" claim for the roles scope.
func userClaims(user *storage.User, roles []string, scopes fosite.Arguments) map[string]interface{} {
	claims := map[string]interface{}{"sub": user.ID}
	if scopes.Has("profile") {
		preferred := user.PreferredUsername
		if preferred == "" {
			preferred = user.Username
		}
		claims["preferred_username"] = preferred
		claims["updated_at"] = user.UpdatedAt.Unix()
		optional := map[string]string{
			"name": user.Name, "given_name": user.GivenName, "family_name": user.FamilyName,
			"middle_name": user.MiddleName, "nickname": user.Nickname, "profile": user.Profile,
			"website": user.Website, "gender": user.Gender, "birthdate": user.Birthdate,
			"picture": user.Picture, "locale": user.Locale, "zoneinfo": user.Zoneinfo,
		}
		for name, value := range optional {
			if value != "" {
				claims[name] = value
			}
		}
	}
	if scopes.Has("email") && user.Email != "" {
		claims["email"] = user.Email
		claims["email_verified"] = user.EmailVerified
	}
	if address := user.AddressClaim(); scopes.Has("address") && address != nil {
		claims["address"] = address
	}
	if scopes.Has("phone") && user.PhoneNumber != "" {
		claims["phone_number"] = user.PhoneNumber
		claims["phone_number_verified"] = user.PhoneNumberVerified
	}
	if scopes.Has(ScopeRoles) {
		claims["roles"] = append([]string{}, roles...)
	}
	return claims
}
