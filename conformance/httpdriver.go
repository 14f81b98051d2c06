package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strings"
	"sync"

	"golang.org/x/net/html"
)

// maxNavigationSteps bounds the requests of one navigation, so that a
// redirect loop ends.
const maxNavigationSteps = 40

// pageSelectors are the compiled Selectors.
type pageSelectors struct {
	username, password, submit, consent, logout selector
}

func compileSelectors(s Selectors) (pageSelectors, error) {
	var compiled pageSelectors
	var err error
	for _, item := range []struct {
		text string
		into *selector
	}{
		{s.Username, &compiled.username}, {s.Password, &compiled.password}, {s.Submit, &compiled.submit},
		{s.Consent, &compiled.consent}, {s.Logout, &compiled.logout},
	} {
		if *item.into, err = parseSelector(item.text); err != nil {
			return compiled, err
		}
	}
	return compiled, nil
}

// httpAgent is the HTTP driver: a cookie jar and an HTML form parser, with
// no JavaScript. It submits form_post pages as a browser does, and posts a
// redirect's fragment to the callback page's endpoint as the page's script
// would.
type httpAgent struct {
	origin string
	// providerOrigin is the issuer's scheme://host:port, with the default
	// port written out.
	providerOrigin string
	selectors      pageSelectors
	username       string
	password       string

	mu     sync.Mutex
	client *http.Client
}

// newHTTPAgent returns an HTTP driver whose callback server is at origin
// and whose provider is at issuer.
func newHTTPAgent(base *http.Client, origin, issuer string, selectors pageSelectors, username, password string) *httpAgent {
	a := &httpAgent{origin: origin, selectors: selectors, username: username, password: password}
	if parsed, err := url.Parse(issuer); err == nil {
		a.providerOrigin = originOf(parsed)
	}
	jar, _ := cookiejar.New(nil)
	a.client = &http.Client{
		Transport: base.Transport,
		Timeout:   base.Timeout,
		Jar:       jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return a
}

// close closes the idle connections of the agent's transport. The
// transport is shared with the other agents of the run only when it has no
// certificate of the callback server to add, and closing idle connections
// never breaks the requests in flight of those agents.
func (a *httpAgent) close() {
	a.httpClient().CloseIdleConnections()
}

func (a *httpAgent) screenshot(context.Context) ([]byte, error) { return nil, errNoBrowser }

func (a *httpAgent) clearCookies(context.Context) error {
	jar, _ := cookiejar.New(nil)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.client.Jar = jar
	return nil
}

func (a *httpAgent) httpClient() *http.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client
}

func (a *httpAgent) navigate(ctx context.Context, rawURL string, options navigateOptions) (*navigation, error) {
	target, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	return a.drive(ctx, &pendingRequest{method: http.MethodGet, url: target}, options)
}

func (a *httpAgent) postForm(ctx context.Context, action string, form url.Values, options navigateOptions) (*navigation, error) {
	target, err := url.Parse(action)
	if err != nil {
		return nil, fmt.Errorf("invalid form action: %w", err)
	}
	return a.drive(ctx, &pendingRequest{method: http.MethodPost, url: target, form: form}, options)
}

// pendingRequest is the next request of a navigation. url keeps its
// fragment, which is never sent but which the callback page reads.
type pendingRequest struct {
	method string
	url    *url.URL
	form   url.Values
	// enctype is the encoding of a POST body: a form's enctype attribute,
	// or application/x-www-form-urlencoded when empty.
	enctype string
}

func (p *pendingRequest) build(ctx context.Context) (*http.Request, error) {
	target := *p.url
	target.Fragment, target.RawFragment = "", ""
	var body io.Reader
	contentType := ""
	if p.method == http.MethodPost {
		encoded, encodedType, err := encodeFormBody(p.form, p.enctype)
		if err != nil {
			return nil, err
		}
		body, contentType = bytes.NewReader(encoded), encodedType
	}
	req, err := http.NewRequestWithContext(ctx, p.method, target.String(), body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	return req, nil
}

func (a *httpAgent) isHarness(u *url.URL) bool {
	return u.Scheme+"://"+u.Host == a.origin
}

// isProvider reports whether u has the issuer's scheme, host and port. The
// HTTP driver follows no redirect and submits no form to other origins, so
// that a provider that sends the user agent where it must not gets no
// request, and no password, sent elsewhere.
func (a *httpAgent) isProvider(u *url.URL) bool {
	return a.providerOrigin != "" && originOf(u) == a.providerOrigin
}

// originOf returns u's lowercase scheme://host:port, with the scheme's
// default port written out.
func originOf(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// drive sends next and follows redirects and the provider's forms until the
// callback server is reached or a page needs nothing from the person.
func (a *httpAgent) drive(ctx context.Context, next *pendingRequest, options navigateOptions) (*navigation, error) {
	nav := &navigation{}
	client := a.httpClient()
	submittedLogin := false
	for step := 0; step < maxNavigationSteps; step++ {
		nav.FinalURL = next.url.String()
		if a.isHarness(next.url) {
			nav.ReachedHarness = true
			return nav, a.deliver(ctx, client, next)
		}

		req, err := next.build(ctx)
		if err != nil {
			return nav, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nav, fmt.Errorf("%s %s: %w", next.method, redactURL(next.url.String()), err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return nav, fmt.Errorf("read %s: %w", redactURL(next.url.String()), err)
		}
		nav.Status = resp.StatusCode

		if location := resp.Header.Get("Location"); isRedirect(resp.StatusCode) && location != "" {
			target, err := next.url.Parse(location)
			if err != nil {
				return nav, fmt.Errorf("invalid Location %q: %w", redactURL(location), err)
			}
			if !a.isHarness(target) && !a.isProvider(target) {
				nav.ExternalRedirect = target.String()
				return nav, nil
			}
			redirected := &pendingRequest{method: http.MethodGet, url: target}
			if (resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect) && next.method == http.MethodPost {
				redirected.method, redirected.form, redirected.enctype = http.MethodPost, next.form, next.enctype
			}
			next = redirected
			continue
		}

		if !strings.Contains(mediaType(resp.Header), "html") {
			nav.Text = string(body[:min(len(body), 500)])
			return nav, nil
		}
		doc, err := html.Parse(bytes.NewReader(body))
		if err != nil {
			return nav, fmt.Errorf("parse %s: %w", redactURL(next.url.String()), err)
		}
		nav.Title, nav.Text = pageTitle(doc), pageText(doc)

		pending, action := a.nextForm(doc, next.url, options)
		if pending != nil && !a.isHarness(pending.url) && !a.isProvider(pending.url) {
			return nav, fmt.Errorf("the %s form on %s submits to %s, which is neither the provider's origin %s nor the callback server, so the user agent did not submit it",
				action, redactURL(next.url.String()), redactURL(pending.url.String()), a.providerOrigin)
		}
		switch action {
		case "login":
			if options.stopAtLogin {
				nav.AtLogin = true
				return nav, nil
			}
			if submittedLogin {
				nav.LoginFailed = true
				return nav, nil
			}
			nav.Logins++
			submittedLogin = true
		case "consent":
			nav.Consents++
			submittedLogin = false
		case "":
			return nav, nil
		default:
			submittedLogin = false
		}
		next = pending
	}
	return nav, errors.New("the provider's pages did not settle after 40 requests")
}

// deliver sends the request to the callback server and, when the callback
// page requests it, posts the fragment as the page's script would.
func (a *httpAgent) deliver(ctx context.Context, client *http.Client, next *pendingRequest) error {
	req, err := next.build(ctx)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("deliver to the callback server: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	endpoint := resp.Header.Get(fragmentEndpointHeader)
	if endpoint == "" {
		return nil
	}
	target, err := next.url.Parse(endpoint)
	if err != nil {
		return err
	}
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(next.url.EscapedFragment()))
	if err != nil {
		return err
	}
	post.Header.Set("Content-Type", "text/plain")
	resp, err = client.Do(post)
	if err != nil {
		return fmt.Errorf("post the fragment to the callback server: %w", err)
	}
	resp.Body.Close()
	return nil
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// nextForm finds what a person would do on the page: sign in, grant
// consent, confirm a logout, or let an auto-submitting form (form_post)
// go. It returns the request and the name of the action, or "" when the
// page requires nothing.
func (a *httpAgent) nextForm(doc *html.Node, page *url.URL, options navigateOptions) (*pendingRequest, string) {
	if password := a.selectors.password.first(doc); password != nil {
		if form := enclosingForm(password); form != nil {
			overrides := map[*html.Node]string{password: a.password}
			if username := a.selectors.username.first(form); username != nil {
				overrides[username] = a.username
			}
			return formSubmission(form, page, a.selectors.submit.first(form), overrides), "login"
		}
	}
	if button := a.selectors.consent.first(doc); button != nil {
		if form := enclosingForm(button); form != nil {
			return formSubmission(form, page, button, nil), "consent"
		}
	}
	if options.confirmLogout {
		if button := a.selectors.logout.first(doc); button != nil {
			if form := enclosingForm(button); form != nil {
				return formSubmission(form, page, button, nil), "logout"
			}
		}
	}
	if form := autoSubmitForm(doc); form != nil {
		return formSubmission(form, page, nil, nil), "auto-submit"
	}
	return nil, ""
}

func enclosingForm(n *html.Node) *html.Node {
	for p := n; p != nil; p = p.Parent {
		if p.Type == html.ElementNode && p.Data == "form" {
			return p
		}
	}
	return nil
}

// autoSubmitForm returns the first form of a page that submits a form
// from script, as form_post response pages do (OAuth 2.0 Form Post Response
// Mode §2), or nil.
func autoSubmitForm(doc *html.Node) *html.Node {
	submits := false
	var firstForm *html.Node
	walk(doc, func(n *html.Node) bool {
		if n.Type != html.ElementNode {
			return true
		}
		switch n.Data {
		case "body":
			if onload, _ := attribute(n, "onload"); strings.Contains(onload, "submit") {
				submits = true
			}
		case "script":
			if n.FirstChild != nil && strings.Contains(n.FirstChild.Data, ".submit(") {
				submits = true
			}
		case "form":
			if firstForm == nil {
				firstForm = n
			}
		}
		return true
	})
	if !submits {
		return nil
	}
	return firstForm
}

// formSubmission builds the request a browser sends for form, with the
// clicked button's name and value, and overrides for some fields' values
// (HTML Living Standard §4.10.21.4, "constructing the entry list").
func formSubmission(form *html.Node, page *url.URL, clicked *html.Node, overrides map[*html.Node]string) *pendingRequest {
	fields := url.Values{}
	walk(form, func(n *html.Node) bool {
		if n.Type != html.ElementNode {
			return true
		}
		name, hasName := attribute(n, "name")
		if _, disabled := attribute(n, "disabled"); disabled || !hasName || name == "" {
			return true
		}
		value, _ := attribute(n, "value")
		if override, ok := overrides[n]; ok {
			value = override
		}
		switch n.Data {
		case "input":
			kind, _ := attribute(n, "type")
			switch strings.ToLower(kind) {
			case "submit", "image", "button", "reset", "file":
				if n == clicked {
					fields.Add(name, value)
				}
			case "checkbox", "radio":
				if _, checked := attribute(n, "checked"); checked {
					if _, hasValue := attribute(n, "value"); !hasValue {
						value = "on"
					}
					fields.Add(name, value)
				}
			default:
				fields.Add(name, value)
			}
		case "button":
			if n == clicked {
				fields.Add(name, value)
			}
		case "textarea":
			fields.Add(name, nodeText(n))
		case "select":
			fields.Add(name, selectedOption(n))
		}
		return true
	})

	action := page
	if raw, ok := attribute(form, "action"); ok && raw != "" {
		if parsed, err := page.Parse(raw); err == nil {
			action = parsed
		}
	}
	method, _ := attribute(form, "method")
	if strings.EqualFold(method, "post") {
		enctype, _ := attribute(form, "enctype")
		return &pendingRequest{method: http.MethodPost, url: action, form: fields, enctype: enctype}
	}
	target := *action
	target.RawQuery = fields.Encode()
	target.Fragment, target.RawFragment = "", ""
	return &pendingRequest{method: http.MethodGet, url: &target}
}

func selectedOption(sel *html.Node) string {
	var first, selected *html.Node
	walk(sel, func(n *html.Node) bool {
		if n.Type == html.ElementNode && n.Data == "option" {
			if first == nil {
				first = n
			}
			if _, ok := attribute(n, "selected"); ok && selected == nil {
				selected = n
			}
		}
		return true
	})
	if selected == nil {
		selected = first
	}
	if selected == nil {
		return ""
	}
	if value, ok := attribute(selected, "value"); ok {
		return value
	}
	return strings.TrimSpace(nodeText(selected))
}

func nodeText(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) bool {
		if c.Type == html.ElementNode && (c.Data == "script" || c.Data == "style") {
			return true
		}
		if c.Type == html.TextNode && (c.Parent == nil || (c.Parent.Data != "script" && c.Parent.Data != "style")) {
			b.WriteString(c.Data)
			b.WriteByte(' ')
		}
		return true
	})
	return b.String()
}

func pageTitle(doc *html.Node) string {
	var title string
	walk(doc, func(n *html.Node) bool {
		if n.Type == html.ElementNode && n.Data == "title" {
			title = strings.TrimSpace(nodeText(n))
			return false
		}
		return true
	})
	return title
}

// pageText returns the start of the visible text of the page's body.
func pageText(doc *html.Node) string {
	var body *html.Node
	walk(doc, func(n *html.Node) bool {
		if n.Type == html.ElementNode && n.Data == "body" {
			body = n
			return false
		}
		return true
	})
	if body == nil {
		return ""
	}
	text := strings.Join(strings.Fields(nodeText(body)), " ")
	return text[:min(len(text), 300)]
}

// encodeFormBody encodes fields as a browser encodes a POST form of the
// enctype, and returns the body and its Content-Type (HTML Living Standard
// §4.10.21.3, "form submission algorithm"). An empty or unknown enctype
// means application/x-www-form-urlencoded, as in browsers.
func encodeFormBody(fields url.Values, enctype string) ([]byte, string, error) {
	switch strings.ToLower(strings.TrimSpace(enctype)) {
	case "text/plain":
		// Browsers write one "name=value" line per entry, unescaped, with
		// CR LF line ends.
		var b strings.Builder
		for _, name := range sortedKeys(fields) {
			for _, value := range fields[name] {
				b.WriteString(name + "=" + value + "\r\n")
			}
		}
		return []byte(b.String()), "text/plain", nil
	case "multipart/form-data":
		var b bytes.Buffer
		writer := multipart.NewWriter(&b)
		for _, name := range sortedKeys(fields) {
			for _, value := range fields[name] {
				if err := writer.WriteField(name, value); err != nil {
					return nil, "", fmt.Errorf("encode form field %q: %w", name, err)
				}
			}
		}
		if err := writer.Close(); err != nil {
			return nil, "", fmt.Errorf("encode multipart form: %w", err)
		}
		return b.Bytes(), writer.FormDataContentType(), nil
	default:
		return []byte(fields.Encode()), "application/x-www-form-urlencoded", nil
	}
}

// sortedKeys returns the names of fields in order, as url.Values.Encode
// writes them.
func sortedKeys(fields url.Values) []string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
