package provider

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

//go:embed templates/*.html
var templateFiles embed.FS

func parsePages() (*template.Template, error) {
	return template.ParseFS(templateFiles, "templates/*.html")
}

// scopeDescriptions are the consent page's words for each scope.
var scopeDescriptions = map[string]string{
	"openid":         "Confirm your identity",
	"profile":        "See your name and username",
	"email":          "See your email address",
	"offline_access": "Keep access while you are away",
	"phone":          "See your phone number",
	"address":        "See your postal address",
	"roles":          "See your roles",
	"admin":          "Manage users, roles and the audit log, as far as your account allows",
	"account":        "Change your profile and password",
}

type loginView struct {
	Title, ClientName, Flow, CSRFToken, Username, Error string
	Links                                               clientLinks
}

type consentView struct {
	Title, ClientName, Flow, CSRFToken, Username string
	Scopes                                       []string
}

type errorView struct {
	Title, Message, Code string
}

// renderPage writes an HTML page with headers that keep it out of caches
// and frames.
func (p *Provider) renderPage(c *gin.Context, status int, name string, view any) {
	p.renderPageWithImage(c, status, name, view, "")
}

// renderPageWithImage is renderPage for a page that shows an image from
// imageURL, such as a client's logo. The Content-Security-Policy allows
// images from that URL alone.
func (p *Provider) renderPageWithImage(c *gin.Context, status int, name string, view any, imageURL string) {
	var body bytes.Buffer
	if err := p.pages.ExecuteTemplate(&body, name, view); err != nil {
		p.logger.ErrorContext(c.Request.Context(), "render page failed", "page", name, "error", err)
		c.String(http.StatusInternalServerError, "Internal error.")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("X-Frame-Options", "DENY")
	// No form-action directive: browsers apply it to the redirect that
	// follows a form post, and the login and consent forms end in a
	// redirect to the client's own origin.
	policy := "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
	if source := imageSource(imageURL); source != "" {
		policy += "; img-src " + source
	}
	c.Header("Content-Security-Policy", policy)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(status, "text/html; charset=utf-8", body.Bytes())
}

// renderError shows an error page. It never redirects, so it is what a
// request gets when its client or redirect_uri cannot be trusted.
func (p *Provider) renderError(c *gin.Context, status int, message, code string) {
	p.renderPage(c, status, "error.html", errorView{Title: "Sign-in failed", Message: message, Code: code})
}

// renderOAuthErrorPage shows an OAuth error as a page.
func (p *Provider) renderOAuthErrorPage(c *gin.Context, err error) {
	rfc := oauthError(err, "")
	p.logError(c, err, rfc)
	status := rfc.StatusCode()
	if status < 400 || status == http.StatusUnauthorized {
		status = http.StatusBadRequest
	}
	p.renderError(c, status, cleanDescription(rfc.GetDescription()), rfc.ErrorField)
}

// imageSource is the CSP source expression for exactly one image URL, or
// empty when the URL is not an absolute http(s) URL that a policy can name
// safely.
func imageSource(imageURL string) string {
	u, err := url.Parse(imageURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" ||
		strings.ContainsAny(imageURL, " ;,'\"") {
		return ""
	}
	u.Fragment = ""
	return u.String()
}
