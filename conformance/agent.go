package conformance

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// errNoBrowser is returned by the HTTP driver for what only a browser can
// do, such as screenshots.
var errNoBrowser = errors.New("this needs Chromium, and the module runs without it")

// userAgent is the person's browser in a module: the HTTP driver or
// headless Chromium. It follows the provider's pages, signs in whenever the
// login form shows, grants consent, submits form_post pages, and stops when
// it reaches the callback server or a page it has nothing to do on.
type userAgent interface {
	// navigate loads rawURL with GET and follows the provider's pages.
	navigate(ctx context.Context, rawURL string, options navigateOptions) (*navigation, error)
	// postForm submits form to action as an HTML form POST would, then
	// follows the provider's pages.
	postForm(ctx context.Context, action string, form url.Values, options navigateOptions) (*navigation, error)
	// clearCookies deletes every cookie, and with them the provider's session.
	clearCookies(ctx context.Context) error
	// screenshot returns a PNG of the current page, or errNoBrowser.
	screenshot(ctx context.Context) ([]byte, error)
	close()
}

// navigateOptions changes what the user agent does on the provider's pages.
type navigateOptions struct {
	// confirmLogout submits the provider's logout confirmation form.
	confirmLogout bool
	// captureLogin takes a screenshot of the login page before signing in,
	// when the user agent can.
	captureLogin bool
	// stopAtLogin stops on the login page instead of signing in.
	stopAtLogin bool
}

// navigation describes where a user agent stopped.
type navigation struct {
	// Logins counts the login forms submitted, Consents the consent forms.
	Logins   int
	Consents int
	// LoginFailed is set when the login form showed again right after it
	// was submitted.
	LoginFailed bool
	// AtLogin is set when the user agent stopped on the login page, as
	// stopAtLogin requests.
	AtLogin bool
	// LoginScreenshot is the PNG of the login page that captureLogin asked
	// for.
	LoginScreenshot []byte
	// ExternalRedirect is a redirect to a host that is neither the
	// provider's nor the callback server's, which the HTTP driver does
	// not follow.
	ExternalRedirect string
	// ReachedHarness is set when the provider sent the user agent to the
	// callback server.
	ReachedHarness bool
	// FinalURL is the last URL loaded; Status its HTTP status where known.
	FinalURL string
	Status   int
	Title    string
	// Text is an excerpt of the visible text of the last page.
	Text string
}

// describe summarizes the page the user agent stopped on, for messages.
func (n *navigation) describe() string {
	var parts []string
	if n.Status != 0 {
		parts = append(parts, "status "+strconv.Itoa(n.Status))
	}
	if n.FinalURL != "" {
		parts = append(parts, "at "+redactURL(n.FinalURL))
	}
	if n.Title != "" {
		parts = append(parts, "title "+strconv.Quote(n.Title))
	}
	if n.Text != "" {
		parts = append(parts, "text "+strconv.Quote(oneLine(n.Text)))
	}
	return strings.Join(parts, ", ")
}

// redactURL drops the query and fragment of a URL, which may carry codes,
// tokens and flow state that must not reach reports.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	return u.String()
}
