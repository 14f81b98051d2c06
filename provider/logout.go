package provider

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/logout"
	"github.com/latchkey/latchkey/storage"
)

// logoutRequest is an RP-initiated logout request that passed validation,
// sealed into the confirmation page so that the person's choice cannot
// change it.
type logoutRequest struct {
	ClientID              string    `json:"client_id,omitempty"`
	PostLogoutRedirectURI string    `json:"post_logout_redirect_uri,omitempty"`
	State                 string    `json:"state,omitempty"`
	SessionID             string    `json:"sid,omitempty"`
	ExpiresAt             time.Time `json:"expires_at"`
}

var logoutAdditionalData = []byte("latchkey logout request")

// endSession is the end_session_endpoint of OpenID Connect RP-Initiated
// Logout 1.0 (https://openid.net/specs/openid-connect-rpinitiated-1_0.html).
// With an id_token_hint naming the browser's current session it signs the
// person out at once. Otherwise it shows a confirmation page first (§2, "the
// OP SHOULD ask the End-User whether to log out"). It redirects only to a
// post_logout_redirect_uri registered for the client, character for
// character, and only when a valid id_token_hint came with it. It echoes
// state there and adds no other parameter.
//
// Clients of the ended session that registered a frontchannel_logout_uri
// are notified through iframes first (OpenID Connect Front-Channel Logout
// 1.0, https://openid.net/specs/openid-connect-frontchannel-1_0.html), and
// those that registered a backchannel_logout_uri get a logout token from
// the SessionEnder.
func (p *Provider) endSession(c *gin.Context) {
	if c.Request.Method == http.MethodPost && c.Request.PostForm.Has("logout_request") {
		p.confirmLogout(c)
		return
	}

	request, hintSessionID, err := p.parseLogoutRequest(c)
	if err != nil {
		p.renderError(c, http.StatusBadRequest, cleanDescription(err.Error()), "invalid_request")
		return
	}
	session, err := p.currentLoginSession(c)
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}
	if session == nil {
		p.finishLogout(c, request, nil)
		return
	}
	if hintSessionID != "" && hintSessionID == session.ID {
		frames, err := p.logout(c, session, request.ClientID, "rp_initiated_logout")
		if err != nil {
			p.renderUnavailable(c, err)
			return
		}
		p.finishLogout(c, request, frames)
		return
	}

	request.SessionID = session.ID
	request.ExpiresAt = p.now().Add(flowLifetime)
	data, _ := json.Marshal(request)
	p.renderPage(c, http.StatusOK, "logout.html", logoutView{
		Title:      "Sign out",
		ClientName: p.clientNameIfKnown(c, request.ClientID),
		Request:    base64.RawURLEncoding.EncodeToString(p.flows.Seal(data, logoutAdditionalData)),
		CSRFToken:  p.csrfToken(c),
	})
}

type logoutView struct {
	Title, ClientName, Request, CSRFToken string
}

func (p *Provider) clientNameIfKnown(c *gin.Context, clientID string) string {
	if clientID == "" {
		return ""
	}
	return p.clientName(c, clientID)
}

// parseLogoutRequest validates the parameters of a logout request and
// returns the sid of its id_token_hint, if any. A post_logout_redirect_uri
// is accepted only with a valid id_token_hint, because without one anybody
// can build the request, and a client_id alone proves nothing.
func (p *Provider) parseLogoutRequest(c *gin.Context) (*logoutRequest, string, error) {
	form := c.Request.Form
	request := &logoutRequest{ClientID: form.Get("client_id"), State: form.Get("state")}

	var hintSessionID string
	hint := form.Get("id_token_hint")
	if hint != "" {
		claims, err := p.decodeIDTokenHint(c, hint)
		if err != nil {
			return nil, "", errors.New("The id_token_hint is not an ID token this provider issued.")
		}
		audience := claimStrings(claims["aud"])
		if request.ClientID == "" && len(audience) == 1 {
			request.ClientID = audience[0]
		}
		if request.ClientID != "" && !slices.Contains(audience, request.ClientID) {
			return nil, "", errors.New("The id_token_hint was not issued to this client_id.")
		}
		hintSessionID, _ = claims["sid"].(string)
	}

	if redirect := form.Get("post_logout_redirect_uri"); redirect != "" {
		if hint == "" {
			return nil, "", errors.New("A post_logout_redirect_uri needs an id_token_hint: Latchkey redirects only for an ID token it issued to the client.")
		}
		if request.ClientID == "" {
			return nil, "", errors.New("The id_token_hint names several clients: add client_id to say which one the post_logout_redirect_uri belongs to.")
		}
		client, err := p.store.GetClientByID(c.Request.Context(), request.ClientID)
		if err != nil || !slices.Contains(client.PostLogoutRedirectURIs, redirect) {
			return nil, "", errors.New("The post_logout_redirect_uri is not registered for this client.")
		}
		request.PostLogoutRedirectURI = redirect
	} else if request.ClientID != "" {
		if _, err := p.store.GetClientByID(c.Request.Context(), request.ClientID); err != nil {
			return nil, "", errors.New("The client_id is unknown.")
		}
	}
	return request, hintSessionID, nil
}

// decodeIDTokenHint verifies an ID token this provider signed. An expired
// token is accepted: RP-Initiated Logout 1.0 §2 allows it as a hint.
func (p *Provider) decodeIDTokenHint(c *gin.Context, hint string) (jwt.MapClaims, error) {
	signer := &tokenSigner{keys: p.keys, algorithm: AlgRS256}
	token, err := signer.Decode(c.Request.Context(), hint)
	var validation *jwt.ValidationError
	if err != nil && !(errors.As(err, &validation) && validation.Errors&^jwt.ValidationErrorExpired == 0) {
		return nil, err
	}
	if token == nil || token.Claims == nil {
		return nil, errors.New("empty token")
	}
	if issuer, _ := token.Claims["iss"].(string); issuer != p.cfg.Issuer {
		return nil, errors.New("foreign issuer")
	}
	if typ, _ := token.Header["typ"].(string); typ == "at+jwt" || typ == "logout+jwt" {
		return nil, errors.New("an access or logout token is no ID token")
	}
	// Latchkey signs other JWTs with the same keys: signed userinfo has no
	// exp, and logout tokens carry events.
	if _, ok := token.Claims["exp"]; !ok {
		return nil, errors.New("a token without exp is no ID token")
	}
	if _, ok := token.Claims["events"]; ok {
		return nil, errors.New("a logout token is no ID token")
	}
	return token.Claims, nil
}

func claimStrings(value any) []string {
	switch v := value.(type) {
	case string:
		return []string{v}
	case []any:
		var values []string
		for _, item := range v {
			if s, ok := item.(string); ok {
				values = append(values, s)
			}
		}
		return values
	}
	return nil
}

// confirmLogout handles the person's choice on the confirmation page.
func (p *Provider) confirmLogout(c *gin.Context) {
	if !p.checkCSRF(c) {
		p.renderError(c, http.StatusForbidden, "The form expired or was not sent from this site. Go back and try again.", "")
		return
	}
	data, err := base64.RawURLEncoding.DecodeString(c.PostForm("logout_request"))
	var plain []byte
	if err == nil {
		plain, err = p.flows.Open(data, logoutAdditionalData)
	}
	var request logoutRequest
	if err != nil || json.Unmarshal(plain, &request) != nil || !p.now().Before(request.ExpiresAt) {
		p.renderError(c, http.StatusBadRequest, "This sign-out request is invalid or has expired.", "")
		return
	}

	if c.PostForm("decision") != "logout" {
		p.renderPage(c, http.StatusOK, "signed_out.html", errorView{Title: "Still signed in", Message: "You are still signed in."})
		return
	}
	session, err := p.currentLoginSession(c)
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}
	var frames []frontchannelFrame
	if session != nil && session.ID == request.SessionID {
		frames, err = p.logout(c, session, request.ClientID, "rp_initiated_logout_confirmed")
		if err != nil {
			p.renderUnavailable(c, err)
			return
		}
	}
	p.finishLogout(c, &request, frames)
}

// logout ends a login session everywhere and clears its cookie. It returns
// the front-channel logout iframes of the session's clients, read before
// the session ends.
func (p *Provider) logout(c *gin.Context, session *storage.LoginSession, clientID, reason string) ([]frontchannelFrame, error) {
	frames := p.frontchannelFrames(c, session)
	event := newAuditEvent(c, storage.ActorUser, session.UserID, session.UserID, logout.ActionSessionEnded, storage.OutcomeSuccess,
		map[string]any{"reason": reason, "client_id": clientID})
	if err := p.cfg.SessionEnder.End(c.Request.Context(), session, event); err != nil {
		return nil, err
	}
	p.setCookie(c, p.cookieName(sessionCookieName), "", -time.Second)
	return frames, nil
}

// finishLogout sends the browser to the registered post-logout redirect
// URI with state, or shows that the person is signed out. With frames it
// shows the front-channel logout page, which loads them and then goes on
// to the same place.
func (p *Provider) finishLogout(c *gin.Context, request *logoutRequest, frames []frontchannelFrame) {
	var target *url.URL
	if request.PostLogoutRedirectURI != "" {
		var err error
		target, err = url.Parse(request.PostLogoutRedirectURI)
		if err != nil {
			p.renderError(c, http.StatusBadRequest, "The post_logout_redirect_uri is invalid.", "invalid_request")
			return
		}
		if request.State != "" {
			query := target.Query()
			query.Set("state", request.State)
			target.RawQuery = query.Encode()
		}
	}

	switch {
	case len(frames) > 0:
		p.renderFrontchannelPage(c, request, frames, target)
	case target == nil:
		p.renderPage(c, http.StatusOK, "signed_out.html", errorView{Title: "Signed out", Message: "You are signed out of Latchkey."})
	default:
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusSeeOther, target.String())
	}
}

// frontchannelTimeout is how long the front-channel logout page waits for
// the clients' iframes before it goes on to the post-logout redirect URI.
const frontchannelTimeout = 5 * time.Second

// frontchannelFrame is one iframe of the front-channel logout page.
type frontchannelFrame struct {
	// URL is the client's frontchannel_logout_uri with iss and sid added.
	URL        string
	ClientName string
	// Source is the Content-Security-Policy source expression that lets
	// the page frame URL.
	Source string
}

type frontchannelView struct {
	Title      string
	Frames     []frontchannelFrame
	ClientName string
	// ContinueURL is the post-logout redirect URI with state, empty when
	// the page is the last one.
	ContinueURL         template.URL
	ScriptNonce         string
	TimeoutMilliseconds int64
}

// frontchannelFrames returns an iframe for every client of session that
// registered a frontchannel_logout_uri. Each URI gets iss and sid, which
// Front-Channel Logout 1.0 lets the OP add, whether or not the client set
// frontchannel_logout_session_required, because discovery advertises
// frontchannel_logout_session_supported. A client that cannot be read or
// whose URI is unusable is logged and skipped: the session ends either way.
func (p *Provider) frontchannelFrames(c *gin.Context, session *storage.LoginSession) []frontchannelFrame {
	ctx := c.Request.Context()
	var frames []frontchannelFrame
	seen := map[string]bool{}
	for _, clientID := range session.Clients {
		client, err := p.store.GetClientByID(ctx, clientID)
		if err != nil {
			if !errors.Is(err, fosite.ErrNotFound) {
				p.logger.ErrorContext(ctx, "front-channel logout skipped: client unreadable", "client_id", clientID, "error", err)
			}
			continue
		}
		if client.Metadata.FrontchannelLogoutURI == "" {
			continue
		}
		target, err := frontchannelLogoutURL(client.Metadata.FrontchannelLogoutURI, p.cfg.Issuer, session.ID)
		if err == nil && !ValidURLHost(target.Host) {
			// A host such as "a;b" would end the page's frame-src list.
			err = errors.New("the host is not a DNS name or an IP address")
		}
		if err != nil {
			p.logger.WarnContext(ctx, "front-channel logout skipped: invalid frontchannel_logout_uri", "client_id", clientID, "error", err)
			continue
		}
		if seen[target.String()] {
			continue
		}
		seen[target.String()] = true
		name := client.Name
		if name == "" {
			name = client.ID
		}
		frames = append(frames, frontchannelFrame{URL: target.String(), ClientName: name, Source: frameSource(target)})
	}
	return frames
}

// frontchannelLogoutURL adds iss and sid to a registered
// frontchannel_logout_uri and keeps the query it already has.
func frontchannelLogoutURL(registered, issuer, sessionID string) (*url.URL, error) {
	target, err := url.Parse(registered)
	if err != nil {
		return nil, err
	}
	if (target.Scheme != "https" && target.Scheme != "http") || target.Host == "" {
		return nil, errors.New("the URI is not an absolute http or https URL")
	}
	if target.Fragment != "" || target.User != nil {
		return nil, errors.New("the URI has a fragment or user information")
	}
	added := url.Values{"iss": {issuer}, "sid": {sessionID}}.Encode()
	if query := strings.TrimRight(target.RawQuery, "&"); query != "" {
		target.RawQuery = query + "&" + added
	} else {
		target.RawQuery = added
	}
	return target, nil
}

// frameSource returns the CSP source expression that matches target's
// scheme, host, port and exact path. CSP matches paths after
// percent-decoding, so ';' and ',', which would end the directive or the
// policy, are written percent-encoded.
//
// NOTE: CSP host sources have no syntax for IPv6 literals, so a
// frontchannel_logout_uri on an IPv6 address is blocked by the browser.
func frameSource(target *url.URL) string {
	path := strings.NewReplacer(";", "%3B", ",", "%2C").Replace(target.EscapedPath())
	return target.Scheme + "://" + target.Host + path
}

// renderFrontchannelPage shows the signed-out page with an iframe for each
// frontchannel_logout_uri. With a target, a script goes there once every
// iframe has loaded, or after frontchannelTimeout, and a link does the same
// without JavaScript. The policy allows framing only those URIs and running
// only the page's own script, by nonce.
func (p *Provider) renderFrontchannelPage(c *gin.Context, request *logoutRequest, frames []frontchannelFrame, target *url.URL) {
	view := frontchannelView{Title: "Signed out", Frames: frames}
	policy := "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; frame-src"
	for _, frame := range frames {
		policy += " " + frame.Source
	}
	if target != nil && !runsCode(target) {
		view.ClientName = p.clientNameIfKnown(c, request.ClientID)
		// html/template would replace a private-use scheme of a native app
		// (RFC 8252 §7.1) with a placeholder. The URI is registered for the
		// client and runsCode excluded the schemes a link must not have.
		view.ContinueURL = template.URL(target.String())
		view.ScriptNonce = randomToken(18)
		view.TimeoutMilliseconds = frontchannelTimeout.Milliseconds()
		policy += "; script-src 'nonce-" + view.ScriptNonce + "'"
	}

	var body bytes.Buffer
	if err := p.pages.ExecuteTemplate(&body, "frontchannel.html", view); err != nil {
		p.logger.ErrorContext(c.Request.Context(), "render page failed", "page", "frontchannel.html", "error", err)
		c.String(http.StatusInternalServerError, "Internal error.")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("X-Frame-Options", "DENY")
	c.Header("Content-Security-Policy", policy)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer")
	c.Data(http.StatusOK, "text/html; charset=utf-8", body.Bytes())
}

// runsCode reports whether following a link to target would run code in
// the page instead of leaving it.
func runsCode(target *url.URL) bool {
	switch strings.ToLower(target.Scheme) {
	case "javascript", "vbscript", "data":
		return true
	}
	return false
}
