package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
)

// flowLifetime is how long a person has to finish the login and consent
// pages of one authorization request.
const flowLifetime = 30 * time.Minute

// authFlow is an authorization request paused for the login or consent page.
// fosite keeps nothing between requests, so the original parameters travel
// with the pages, sealed (encrypted and authenticated) with a key derived
// from the system secret. Any replica can resume it, and the person cannot
// alter it.
type authFlow struct {
	Form        url.Values `json:"form"`
	RequestedAt time.Time  `json:"requested_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	// LoginSessionID is the session the consent page was shown for.
	LoginSessionID string `json:"sid,omitempty"`
	// LoggedIn records that the person authenticated during this flow, which
	// satisfies prompt=login and max_age.
	LoggedIn bool `json:"logged_in,omitempty"`
	// MFAChallenge names the server-side challenge of a flow waiting for a
	// second factor from MFAUserID. StepUpSessionID is the session that
	// factor will elevate, empty when it follows a password.
	MFAChallenge    string `json:"mfa_challenge,omitempty"`
	MFAUserID       string `json:"mfa_user,omitempty"`
	StepUpSessionID string `json:"step_up_sid,omitempty"`
}

var flowAdditionalData = []byte("latchkey authorization flow")

func (p *Provider) sealFlow(flow *authFlow) string {
	data, _ := json.Marshal(flow)
	return base64.RawURLEncoding.EncodeToString(p.flows.Seal(data, flowAdditionalData))
}

var errFlowInvalid = errors.New("sign-in request is invalid or has expired")

func (p *Provider) openFlow(sealed string) (*authFlow, error) {
	data, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return nil, errFlowInvalid
	}
	plain, err := p.flows.Open(data, flowAdditionalData)
	if err != nil {
		return nil, errFlowInvalid
	}
	var flow authFlow
	if err := json.Unmarshal(plain, &flow); err != nil {
		return nil, errFlowInvalid
	}
	if !p.now().Before(flow.ExpiresAt) {
		return nil, errFlowInvalid
	}
	return &flow, nil
}

// Cookie names. The session cookie carries the login session's secret; the
// CSRF cookie carries a random value whose HMAC is the form token. Over
// https they take the __Host- prefix, which makes browsers reject them
// from any other host, a sibling subdomain included, and from any path
// other than "/".
const (
	sessionCookieName = "latchkey_session"
	csrfCookieName    = "latchkey_csrf"
	hostCookiePrefix  = "__Host-"
)

func (p *Provider) cookieName(name string) string {
	if p.secureCookies {
		return hostCookiePrefix + name
	}
	return name
}

func (p *Provider) setCookie(c *gin.Context, name, value string, maxAge time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge.Seconds()),
		Secure:   p.secureCookies,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// csrfToken returns the form token for this browser, setting the CSRF
// cookie first if it is missing. The token is an HMAC of the cookie value
// (a signed double-submit cookie), so a forged form needs the cookie value.
func (p *Provider) csrfToken(c *gin.Context) string {
	value, err := c.Cookie(p.cookieName(csrfCookieName))
	if err != nil || len(value) < 32 {
		value = randomToken(32)
		p.setCookie(c, p.cookieName(csrfCookieName), value, 0)
	}
	return p.csrfMAC(value)
}

func (p *Provider) csrfMAC(cookieValue string) string {
	mac := hmac.New(sha256.New, p.csrfKey)
	mac.Write([]byte(cookieValue))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// checkCSRF rejects a form post sent from another site, by its Origin or
// Sec-Fetch-Site header where the browser sends one, then compares the
// form token with the cookie in constant time.
func (p *Provider) checkCSRF(c *gin.Context) bool {
	if origin := c.GetHeader("Origin"); origin != "" && origin != "null" && origin != p.issuerOrigin() {
		return false
	}
	if c.GetHeader("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	value, err := c.Cookie(p.cookieName(csrfCookieName))
	if err != nil || value == "" {
		return false
	}
	expected := p.csrfMAC(value)
	return hmac.Equal([]byte(expected), []byte(c.PostForm("csrf_token")))
}

// issuerOrigin returns the scheme, host and port of the issuer.
func (p *Provider) issuerOrigin() string {
	u, err := url.Parse(p.cfg.Issuer)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
