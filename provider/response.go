package provider

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
)

// sendAuthorizationResponse delivers an authorization response, success or
// error, to the client's redirect_uri in the request's response mode. That
// is the query, the fragment (OAuth 2.0 Multiple Response Type Encoding
// Practices §2) or an auto-submitted form (OAuth 2.0 Form Post Response
// Mode). Every response names the issuer in iss (RFC 9207), so a client that
// uses several providers can tell which one sent it.
//
// Only a redirect_uri fosite matched against the client's registered ones
// reaches here; anything else gets an error page.
func (p *Provider) sendAuthorizationResponse(c *gin.Context, ar fosite.AuthorizeRequester, params url.Values) {
	params.Set("iss", p.cfg.Issuer)
	target := *ar.GetRedirectURI()
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")

	switch responseMode(ar) {
	case fosite.ResponseModeFormPost:
		p.renderFormPost(c, target.String(), params)
	case fosite.ResponseModeFragment:
		target.Fragment = ""
		c.Redirect(http.StatusSeeOther, target.String()+"#"+params.Encode())
	default:
		// Query parameters registered with the redirect_uri stay
		// (RFC 6749 §3.1.2); the response's own parameters win.
		query := target.Query()
		for name, values := range params {
			query[name] = values
		}
		target.RawQuery = query.Encode()
		c.Redirect(http.StatusSeeOther, target.String())
	}
}

// responseMode is the mode a response goes back in. fosite sets a default
// only once the response type was parsed, so an error found earlier falls
// back here: the query for a plain code request, the fragment otherwise.
func responseMode(ar fosite.AuthorizeRequester) fosite.ResponseModeType {
	if mode := ar.GetResponseMode(); mode != fosite.ResponseModeDefault {
		return mode
	}
	if types := ar.GetResponseTypes(); len(types) == 0 || types.ExactOne("code") {
		return fosite.ResponseModeQuery
	}
	return fosite.ResponseModeFragment
}

// formPostScript submits the form as soon as the page loads. Its hash is
// the only script the page's Content-Security-Policy allows.
const formPostScript = `document.getElementById("response").submit();`

var formPostScriptHash = func() string {
	sum := sha256.Sum256([]byte(formPostScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

type formPostView struct {
	Title  string
	Action string
	Params url.Values
	Script template.JS
}

// renderFormPost writes the form_post page: a form holding the response
// parameters, posted to the redirect_uri by a script, or by the person
// through its visible button when scripts do not run.
func (p *Provider) renderFormPost(c *gin.Context, action string, params url.Values) {
	var body bytes.Buffer
	view := formPostView{Title: "Returning to the app", Action: action, Params: params, Script: template.JS(formPostScript)}
	if err := p.pages.ExecuteTemplate(&body, "form_post.html", view); err != nil {
		p.logger.ErrorContext(c.Request.Context(), "render page failed", "page", "form_post.html", "error", err)
		c.String(http.StatusInternalServerError, "Internal error.")
		return
	}
	origin := action
	if u, err := url.Parse(action); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	c.Header("X-Frame-Options", "DENY")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("Content-Security-Policy", "default-src 'none'; script-src "+formPostScriptHash+
		"; style-src 'unsafe-inline'; form-action "+origin+"; frame-ancestors 'none'; base-uri 'none'")
	c.Data(http.StatusOK, "text/html; charset=utf-8", body.Bytes())
}
