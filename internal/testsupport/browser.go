package testsupport

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// CallbackURL is the redirect URI of the test clients. Nothing listens
// there, because browsers stop at the provider's redirect to it.
const CallbackURL = "http://127.0.0.1:8080/callback"

// Browser is a person's browser: a cookie jar, and redirects followed until
// the one its BrowserOptions.StopAt selects, such as the provider's
// redirect to the client's callback. Its methods fail the test T on any
// transport error.
type Browser struct {
	T      testing.TB
	Client *http.Client
}

// BrowserOptions configures NewBrowser.
type BrowserOptions struct {
	// StopAt reports whether the browser stops at a redirect to next and
	// returns the redirect response instead of following it. It must not
	// be nil.
	StopAt func(next *http.Request) bool
	// UserAgent, unless empty, is the User-Agent header of every request.
	UserAgent string
}

// NewBrowser returns a browser with an empty cookie jar and a 30-second
// timeout per request.
func NewBrowser(t testing.TB, options BrowserOptions) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if options.StopAt(req) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	if options.UserAgent != "" {
		client.Transport = userAgentTransport{userAgent: options.UserAgent, base: http.DefaultTransport}
	}
	return &Browser{T: t, Client: client}
}

// userAgentTransport sets the User-Agent header of every request.
type userAgentTransport struct {
	userAgent string
	base      http.RoundTripper
}

func (u userAgentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", u.userAgent)
	return u.base.RoundTrip(req)
}

// Page is a fetched response with its body read. URL is the URL of the last
// request, after the redirects the browser followed.
type Page struct {
	Status   int
	Location string
	URL      *url.URL
	Body     string
	Header   http.Header
}

// Do sends req and returns the response the browser stops at.
func (b *Browser) Do(req *http.Request) *Page {
	b.T.Helper()
	resp, err := b.Client.Do(req)
	if err != nil {
		b.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.T.Fatalf("read %s %s: %v", req.Method, req.URL, err)
	}
	return &Page{
		Status:   resp.StatusCode,
		Location: resp.Header.Get("Location"),
		URL:      resp.Request.URL,
		Body:     string(body),
		Header:   resp.Header,
	}
}

// Get fetches rawURL.
func (b *Browser) Get(rawURL string) *Page {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.T.Fatal(err)
	}
	return b.Do(req)
}

// PostForm submits form to rawURL as a browser submits an HTML form.
func (b *Browser) PostForm(rawURL string, form url.Values) *Page {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// Login fills in and submits the login form shown on loginPage, which must
// be the provider's login page with status 200.
func (b *Browser) Login(issuer string, loginPage *Page, username, password string) *Page {
	b.T.Helper()
	if loginPage.URL.Path != "/login" || loginPage.Status != http.StatusOK {
		b.T.Fatalf("expected the login page, got %d at %s: %.300s", loginPage.Status, loginPage.URL, loginPage.Body)
	}
	return b.submitFlowForm(issuer+"/login", "login page", loginPage, url.Values{
		"username": {username},
		"password": {password},
	})
}

// SubmitMFACode fills in and submits the code form shown on mfaPage, which
// must be the provider's MFA page. Its status is not checked, because a
// page that rejected a code shows the form again with status 400.
func (b *Browser) SubmitMFACode(issuer string, mfaPage *Page, code string) *Page {
	b.T.Helper()
	if mfaPage.URL.Path != "/login/mfa" {
		b.T.Fatalf("expected the MFA page, got %d at %s: %.300s", mfaPage.Status, mfaPage.URL, mfaPage.Body)
	}
	return b.submitFlowForm(issuer+"/login/mfa", "MFA page", mfaPage, url.Values{"code": {code}})
}

// submitFlowForm posts the hidden inputs of p, which must include the flow
// and csrf_token of the provider's pages, together with fields to action.
// pageName names p in failure messages.
func (b *Browser) submitFlowForm(action, pageName string, p *Page, fields url.Values) *Page {
	b.T.Helper()
	form := HiddenInputs(b.T, p.Body)
	for _, name := range []string{"flow", "csrf_token"} {
		if form.Get(name) == "" {
			b.T.Fatalf("%s has no hidden input %s: %.300s", pageName, name, p.Body)
		}
	}
	for name, values := range fields {
		form[name] = values
	}
	return b.PostForm(action, form)
}

// HiddenInputs returns the names and values of the hidden inputs of an HTML
// page.
func HiddenInputs(t testing.TB, body string) url.Values {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	values := url.Values{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" {
			attributes := map[string]string{}
			for _, attribute := range n.Attr {
				attributes[attribute.Key] = attribute.Val
			}
			if attributes["type"] == "hidden" {
				values.Set(attributes["name"], attributes["value"])
			}
		}
		for child := n.FirstChild; child != nil; child = child.NextSibling {
			walk(child)
		}
	}
	walk(doc)
	return values
}

// CallbackParams checks that p is the provider's redirect to CallbackURL
// and returns the redirect's query.
func CallbackParams(t testing.TB, p *Page) url.Values {
	t.Helper()
	if p.Status != http.StatusSeeOther && p.Status != http.StatusFound {
		t.Fatalf("expected a redirect to the client, got %d at %s: %.400s", p.Status, p.URL, p.Body)
	}
	if !strings.HasPrefix(p.Location, CallbackURL+"?") {
		t.Fatalf("expected a redirect to %s, got one to %q", CallbackURL, p.Location)
	}
	u, err := url.Parse(p.Location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
