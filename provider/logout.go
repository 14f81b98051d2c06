package provider

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
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
// Logout 1.0. With an id_token_hint naming the browser's current session it
// signs the person out at once. Otherwise it shows a confirmation page first
// (§2, "the OP SHOULD ask the End-User whether to log out"). It redirects only to a
// post_logout_redirect_uri registered for the client, character for
// character, and echoes state there.
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
		p.finishLogout(c, request)
		return
	}
	if hintSessionID != "" && hintSessionID == session.ID {
		if err := p.logout(c, session, request.ClientID, "rp_initiated_logout"); err != nil {
			p.renderUnavailable(c, err)
			return
		}
		p.finishLogout(c, request)
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
// returns the sid of its id_token_hint, if any.
func (p *Provider) parseLogoutRequest(c *gin.Context) (*logoutRequest, string, error) {
	form := c.Request.Form
	request := &logoutRequest{ClientID: form.Get("client_id"), State: form.Get("state")}

	var hintSessionID string
	if hint := form.Get("id_token_hint"); hint != "" {
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
		if request.ClientID == "" {
			return nil, "", errors.New("A post_logout_redirect_uri needs a client_id or an id_token_hint naming the client.")
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
	if typ, _ := token.Header["typ"].(string); typ == "at+jwt" {
		return nil, errors.New("an access token is no ID token")
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
	if session != nil && session.ID == request.SessionID {
		if err := p.logout(c, session, request.ClientID, "rp_initiated_logout_confirmed"); err != nil {
			p.renderUnavailable(c, err)
			return
		}
	}
	p.finishLogout(c, &request)
}

// logout ends a login session everywhere and clears its cookie.
func (p *Provider) logout(c *gin.Context, session *storage.LoginSession, clientID, reason string) error {
	event := newAuditEvent(c, storage.ActorUser, session.UserID, session.UserID, logout.ActionSessionEnded, storage.OutcomeSuccess,
		map[string]any{"reason": reason, "client_id": clientID})
	if err := p.cfg.SessionEnder.End(c.Request.Context(), session, event); err != nil {
		return err
	}
	p.setCookie(c, p.cookieName(sessionCookieName), "", -time.Second)
	return nil
}

// finishLogout sends the browser to the registered post-logout redirect
// URI with state, or shows that the person is signed out.
func (p *Provider) finishLogout(c *gin.Context, request *logoutRequest) {
	if request.PostLogoutRedirectURI == "" {
		p.renderPage(c, http.StatusOK, "signed_out.html", errorView{Title: "Signed out", Message: "You are signed out of Latchkey."})
		return
	}
	target, err := url.Parse(request.PostLogoutRedirectURI)
	if err != nil {
		p.renderError(c, http.StatusBadRequest, "The post_logout_redirect_uri is invalid.", "invalid_request")
		return
	}
	if request.State != "" {
		query := target.Query()
		query.Set("state", request.State)
		target.RawQuery = query.Encode()
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, target.String())
}
