package provider

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// maxLoginHintLength bounds the login_hint that fills in the username.
const maxLoginHintLength = 256

// loginPage shows the username and password form of a paused flow.
func (p *Provider) loginPage(c *gin.Context) {
	flow, err := p.openFlow(c.Query("flow"))
	if err != nil {
		p.renderError(c, http.StatusBadRequest, "This sign-in link is invalid or has expired.", "")
		return
	}
	// login_hint (OpenID Connect Core §3.1.2.1) fills in the username; a
	// hint longer than any username is ignored.
	hint := flow.Form.Get("login_hint")
	if len(hint) > maxLoginHintLength {
		hint = ""
	}
	p.renderLogin(c, http.StatusOK, flow, hint, "")
}

func (p *Provider) renderLogin(c *gin.Context, status int, flow *authFlow, username, message string) {
	view := loginView{
		Title:      "Sign in",
		ClientName: p.clientName(c, flow.Form.Get("client_id")),
		Flow:       p.sealFlow(flow),
		CSRFToken:  p.csrfToken(c),
		Username:   username,
		Error:      message,
	}
	if client, err := p.store.GetClientByID(c.Request.Context(), flow.Form.Get("client_id")); err == nil {
		view.Links = clientLinksOf(client)
	}
	p.renderPageWithImage(c, status, "login.html", view, view.Links.LogoURI)
}

// clientLinks are the client's registered logo, home page, privacy policy
// and terms of service, shown on the login page so that the person can see
// whom they sign in to (OpenID Connect Dynamic Client Registration 1.0 §2).
type clientLinks struct {
	LogoURI, ClientURI, PolicyURI, TOSURI string
}

func clientLinksOf(client *storage.Client) clientLinks {
	return clientLinks{
		LogoURI:   client.Metadata.LogoURI,
		ClientURI: client.Metadata.ClientURI,
		PolicyURI: client.Metadata.PolicyURI,
		TOSURI:    client.Metadata.TOSURI,
	}
}

func (p *Provider) clientName(c *gin.Context, clientID string) string {
	client, err := p.store.GetClientByID(c.Request.Context(), clientID)
	if err != nil || client.Name == "" {
		return clientID
	}
	return client.Name
}

// login checks the submitted credentials, starts a login session and
// resumes the authorization request.
func (p *Provider) login(c *gin.Context) {
	ctx := c.Request.Context()
	if !p.checkCSRF(c) {
		p.renderError(c, http.StatusForbidden, "The form expired or was not sent from this site. Go back and try again.", "")
		return
	}
	flow, err := p.openFlow(c.PostForm("flow"))
	if err != nil {
		p.renderError(c, http.StatusBadRequest, "This sign-in request is invalid or has expired.", "")
		return
	}

	username := c.PostForm("username")
	clientID := flow.Form.Get("client_id")
	user, err := p.authenticate(c, username, c.PostForm("password"))
	if errors.Is(err, errBadCredentials) || errors.Is(err, errUserDisabled) {
		reason, message, subject := "bad_credentials", "Invalid username or password.", ""
		if user != nil {
			subject = user.ID
		}
		if errors.Is(err, errUserDisabled) {
			// Said only to someone who gave the right password.
			reason, message = "user_disabled", "This account is disabled. Contact your administrator."
		}
		p.logger.InfoContext(ctx, "login failed", "reason", reason)
		p.audit(ctx, newAuditEvent(c, storage.ActorUser, "", subject, auditLogin, storage.OutcomeFailure,
			map[string]any{"reason": reason, "client_id": clientID}))
		// 400, not 401: a 401 must carry a WWW-Authenticate challenge, and
		// this form is no HTTP authentication scheme.
		p.renderLogin(c, http.StatusBadRequest, flow, username, message)
		return
	}
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}

	ar, err := p.resumeRequest(ctx, flow)
	if err != nil {
		p.writeAuthorizeError(c, ar, err)
		return
	}

	hasMFA, err := p.userHasMFA(ctx, user.ID)
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}
	if hasMFA {
		// No session yet: the password alone never starts one for an
		// account with a second factor.
		p.startMFA(c, flow, user.ID, "")
		return
	}

	session, err := p.startSession(c, user, []string{"pwd"})
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}
	p.logger.InfoContext(ctx, "login succeeded", "user_id", user.ID)
	p.audit(ctx, newAuditEvent(c, storage.ActorUser, user.ID, user.ID, auditLogin, storage.OutcomeSuccess,
		map[string]any{"client_id": clientID, "amr": session.AMR}))

	flow.LoggedIn = true
	p.continueFlow(c, ar, flow, session)
}

// maxUserAgentLength caps the User-Agent a login session keeps, in bytes.
const maxUserAgentLength = 512

// startSession creates a login session authenticated with amr and sets
// its cookie, or renews the browser's current session of the same user.
func (p *Provider) startSession(c *gin.Context, user *storage.User, amr []string) (*storage.LoginSession, error) {
	now := p.now().UTC()
	// Signing in again, for prompt=login or max_age, renews the browser's
	// session of the same person rather than leaving it beside a new one.
	if current, err := p.currentLoginSession(c); err != nil {
		return nil, err
	} else if current != nil && current.UserID == user.ID {
		authTime := now.Truncate(time.Second)
		err := p.sessions.Elevate(c.Request.Context(), current.ID, amr, authTime)
		if err == nil {
			current.AMR, current.AuthTime = slices.Clone(amr), authTime
			return current, nil
		}
		if !errors.Is(err, fosite.ErrNotFound) {
			return nil, err
		}
	}

	cookieSecret := randomToken(32)
	session := &storage.LoginSession{
		ID:          loginSessionID(cookieSecret),
		UserID:      user.ID,
		AuthTime:    now.Truncate(time.Second),
		AMR:         amr,
		CreatedAt:   now,
		LastSeenAt:  now,
		ExpiresAt:   now.Add(p.cfg.LoginSessionLifetime),
		IdleTimeout: p.cfg.LoginSessionIdleTimeout,
		UserAgent:   storage.CleanText(c.Request.UserAgent(), maxUserAgentLength),
		RemoteAddr:  c.ClientIP(),
	}
	if err := p.sessions.Create(c.Request.Context(), session); err != nil {
		return nil, err
	}
	p.setCookie(c, p.cookieName(sessionCookieName), cookieSecret, p.cfg.LoginSessionLifetime)
	return session, nil
}

var (
	errBadCredentials = errors.New("invalid username or password")
	errUserDisabled   = errors.New("user is disabled")
)

// authenticate checks a username and password. An unknown username is
// checked against a dummy hash, so that it costs the same time as a wrong
// password and response times do not reveal which usernames exist.
func (p *Provider) authenticate(c *gin.Context, username, password string) (*storage.User, error) {
	if username == "" || password == "" {
		return nil, errBadCredentials
	}
	user, err := p.store.GetUserByUsername(c.Request.Context(), username)
	if err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return nil, err
	}
	hash := dummyPasswordHash
	if user != nil {
		hash = user.PasswordHash
	}
	matches, err := p.passwords.Verify(c.Request.Context(), hash, password)
	if err != nil {
		return nil, err
	}
	if user == nil {
		return nil, errBadCredentials
	}
	if !matches {
		// The user is returned for the audit log only; the page shows no more
		// than for an unknown username.
		return user, errBadCredentials
	}
	if user.Disabled {
		return user, errUserDisabled
	}
	return user, nil
}

// consentPage shows the requested scopes for the person to approve.
func (p *Provider) consentPage(c *gin.Context) {
	ctx := c.Request.Context()
	flow, session, ok := p.consentFlow(c, c.Query("flow"))
	if !ok {
		return
	}
	user, err := p.store.GetUser(ctx, session.UserID)
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}

	client, err := p.store.GetClientByID(ctx, flow.Form.Get("client_id"))
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}
	var scopes []string
	for _, scope := range consentScopes(flow.Form, client) {
		description, known := scopeDescriptions[scope]
		if !known {
			description = "Use " + scope
		}
		scopes = append(scopes, description)
	}
	p.renderPage(c, http.StatusOK, "consent.html", consentView{
		Title:      "Allow access",
		ClientName: p.clientName(c, flow.Form.Get("client_id")),
		Flow:       c.Query("flow"),
		CSRFToken:  p.csrfToken(c),
		Username:   user.Username,
		Scopes:     scopes,
	})
}

// consentFlow opens a consent flow and checks that it belongs to the
// browser's current login session. On failure it has already written the error page.
func (p *Provider) consentFlow(c *gin.Context, sealed string) (*authFlow, *storage.LoginSession, bool) {
	flow, err := p.openFlow(sealed)
	if err != nil || flow.LoginSessionID == "" {
		p.renderError(c, http.StatusBadRequest, "This sign-in request is invalid or has expired.", "")
		return nil, nil, false
	}
	session, err := p.currentLoginSession(c)
	if err != nil {
		p.renderUnavailable(c, err)
		return nil, nil, false
	}
	if session == nil || session.ID != flow.LoginSessionID {
		p.renderError(c, http.StatusBadRequest, "Your sign-in session has ended. Return to the application and sign in again.", "")
		return nil, nil, false
	}
	return flow, session, true
}

// consent records the person's decision and finishes the authorization
// request: a code on allow, access_denied on deny.
func (p *Provider) consent(c *gin.Context) {
	ctx := c.Request.Context()
	if !p.checkCSRF(c) {
		p.renderError(c, http.StatusForbidden, "The form expired or was not sent from this site. Go back and try again.", "")
		return
	}
	flow, session, ok := p.consentFlow(c, c.PostForm("flow"))
	if !ok {
		return
	}
	ar, err := p.resumeRequest(ctx, flow)
	if err != nil {
		p.writeAuthorizeError(c, ar, err)
		return
	}

	switch c.PostForm("decision") {
	case "allow":
	case "deny":
		p.audit(ctx, newAuditEvent(c, storage.ActorUser, session.UserID, session.UserID, auditConsentDenied, storage.OutcomeSuccess,
			map[string]any{"client_id": ar.GetClient().GetID(), "scopes": []string(ar.GetRequestedScopes())}))
		p.writeAuthorizeError(c, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	default:
		p.renderError(c, http.StatusBadRequest, "Choose Allow or Deny.", "")
		return
	}

	client, _ := ar.GetClient().(*storage.Client)
	scopes := consentScopes(ar.GetRequestForm(), client)
	if previous, err := p.store.GetConsent(ctx, session.UserID, ar.GetClient().GetID()); err == nil {
		for _, scope := range previous.Scopes {
			if !slices.Contains(scopes, scope) {
				scopes = append(scopes, scope)
			}
		}
	}
	consent := &storage.Consent{UserID: session.UserID, ClientID: ar.GetClient().GetID(), Scopes: scopes, GrantedAt: p.now()}
	event := newAuditEvent(c, storage.ActorUser, session.UserID, session.UserID, auditConsentGranted, storage.OutcomeSuccess,
		map[string]any{"client_id": consent.ClientID, "scopes": scopes})
	if err := p.saveConsent(ctx, consent, event); err != nil {
		p.writeAuthorizeError(c, ar, err)
		return
	}
	p.issueCode(c, ar, flow, session)
}

// saveConsent stores a consent and its audit event in one transaction.
func (p *Provider) saveConsent(ctx context.Context, consent *storage.Consent, event *storage.AuditEvent) error {
	txCtx, err := p.store.BeginTX(ctx)
	if err != nil {
		return err
	}
	if err := p.store.SaveConsent(txCtx, consent); err != nil {
		_ = p.store.Rollback(txCtx)
		return err
	}
	if err := p.store.AppendAuditEvent(txCtx, event); err != nil {
		_ = p.store.Rollback(txCtx)
		return err
	}
	return p.store.Commit(txCtx)
}
