package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// Timing of the browser driver.
const (
	// browserNavigationTimeout bounds one navigate or postForm call.
	browserNavigationTimeout = 60 * time.Second
	// pageSettleTime is how long a loaded page must keep its URL before
	// the driver decides that it requires nothing of the person.
	pageSettleTime = 2 * time.Second
	browserPoll    = 100 * time.Millisecond
)

// browserPool is one headless Chromium process; each module gets a browser
// context of its own, so that cookies never leak between modules.
type browserPool struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// startBrowser starts Chromium. Its resolver finds only allowedHosts and
// 127.0.0.1, so that a page of the provider can send the browser, and the
// test user's password, to no other host.
func startBrowser(path string, ignoreCertificateErrors bool, allowedHosts []string, extraFlags map[string]any) (*browserPool, error) {
	options := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-gpu", true),
		// Keep Chromium from starting traffic of its own: QUIC, background
		// services, component updates and sync.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", hostResolverRules(allowedHosts)),
	)
	if ignoreCertificateErrors {
		options = append(options, chromedp.Flag("ignore-certificate-errors", true))
	}
	for name, value := range extraFlags {
		options = append(options, chromedp.Flag(name, value))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), options...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	cancel := func() {
		cancelBrowser()
		cancelAlloc()
	}
	if err := chromedp.Do(browserCtx); err != nil {
		cancel()
		return nil, err
	}
	return &browserPool{ctx: browserCtx, cancel: cancel}, nil
}

// hostResolverRules returns a --host-resolver-rules value under which
// Chromium resolves no host name except the allowed hosts, and connects to
// no IP address except 127.0.0.1 and allowed ones. Chromium applies
// the rules to every request, proxies aside.
func hostResolverRules(allowedHosts []string) string {
	rules := []string{"MAP * ~NOTFOUND"}
	excluded := map[string]bool{}
	for _, host := range append([]string{"127.0.0.1"}, allowedHosts...) {
		host = strings.ToLower(strings.Trim(host, "[]"))
		if host == "" || excluded[host] || strings.ContainsAny(host, ", ") {
			continue
		}
		excluded[host] = true
		rules = append(rules, "EXCLUDE "+host)
	}
	return strings.Join(rules, ", ")
}

func (p *browserPool) close() { p.cancel() }

// browserAgent drives one Chromium browser context.
type browserAgent struct {
	pool      *browserPool
	origin    string
	selectors Selectors
	username  string
	password  string

	mu     sync.Mutex
	tab    context.Context
	cancel context.CancelFunc
}

func (p *browserPool) newAgent(origin string, opts *Options) (*browserAgent, error) {
	a := &browserAgent{pool: p, origin: origin, selectors: opts.Selectors, username: opts.Username, password: opts.Password}
	if err := a.openTab(); err != nil {
		return nil, err
	}
	return a, nil
}

// openTab opens a tab in a new, empty browser context.
func (a *browserAgent) openTab() error {
	tab, cancel := chromedp.NewContext(a.pool.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(tab); err != nil {
		cancel()
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		a.cancel()
	}
	a.tab, a.cancel = tab, cancel
	return nil
}

func (a *browserAgent) current() context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tab
}

func (a *browserAgent) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		a.cancel()
		a.cancel = nil
	}
}

// clearCookies replaces the browser context with a new one, which has no
// cookies and no storage.
func (a *browserAgent) clearCookies(context.Context) error { return a.openTab() }

func (a *browserAgent) screenshot(ctx context.Context) ([]byte, error) {
	tab, cancel := a.withTimeout(ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(tab, chromedp.FullScreenshot(100))
}

// withTimeout derives a context of the tab that ends at timeout or when
// ctx ends.
func (a *browserAgent) withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	tab, cancel := context.WithTimeout(a.current(), timeout)
	stop := context.AfterFunc(ctx, cancel)
	return tab, func() {
		stop()
		cancel()
	}
}

func (a *browserAgent) navigate(ctx context.Context, rawURL string, options navigateOptions) (*navigation, error) {
	tab, cancel := a.withTimeout(ctx, browserNavigationTimeout)
	defer cancel()
	if err := chromedp.Do(tab, chromedp.Navigate(rawURL)); err != nil && !a.harmlessNavigationError(tab, err) {
		return &navigation{FinalURL: rawURL}, fmt.Errorf("navigate to %s: %w", redactURL(rawURL), err)
	}
	return a.drive(tab, options)
}

// harmlessNavigationError reports whether a failed Navigate still left the
// tab on a page, as when a redirect aborts the first load.
func (a *browserAgent) harmlessNavigationError(tab context.Context, err error) bool {
	if tab.Err() != nil {
		return false
	}
	return strings.Contains(err.Error(), "net::ERR_ABORTED")
}

// postForm loads a page that submits form to action by POST, as the
// official suite's browser does for oidcc-ensure-post-request-succeeds.
func (a *browserAgent) postForm(ctx context.Context, action string, form url.Values, options navigateOptions) (*navigation, error) {
	var inputs strings.Builder
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, value := range form[name] {
			fmt.Fprintf(&inputs, `<input type="hidden" name="%s" value="%s">`, html.EscapeString(name), html.EscapeString(value))
		}
	}
	page := fmt.Sprintf(`<!DOCTYPE html><html><body onload="document.forms[0].submit()"><form method="post" action="%s">%s</form></body></html>`,
		html.EscapeString(action), inputs.String())
	return a.navigate(ctx, "data:text/html;charset=utf-8,"+url.PathEscape(page), options)
}

// pageState is the page state the driver reads on each poll.
type pageState struct {
	Href    string `json:"href"`
	Ready   string `json:"ready"`
	Title   string `json:"title"`
	Text    string `json:"text"`
	Login   bool   `json:"login"`
	Consent bool   `json:"consent"`
	Logout  bool   `json:"logout"`
	// Marked is true while the document the driver last acted on is
	// still loaded.
	Marked bool `json:"marked"`
}

func (a *browserAgent) readState(tab context.Context) (*pageState, error) {
	script := fmt.Sprintf(`(() => {
  const q = (s) => { try { return document.querySelector(s); } catch (e) { return null; } };
  return {
    href: location.href, ready: document.readyState, title: document.title,
    text: document.body ? document.body.innerText.slice(0, 300) : "",
    login: !!q(%s), consent: !!q(%s), logout: !!q(%s), marked: !!window.__conformanceActed,
  };
})()`, jsString(a.selectors.Password), jsString(a.selectors.Consent), jsString(a.selectors.Logout))
	return chromedp.Run(tab, chromedp.Evaluate[*pageState](script))
}

// drive watches the tab and acts as the person would, until the tab
// reaches the callback server or settles on a page that requires nothing.
func (a *browserAgent) drive(tab context.Context, options navigateOptions) (*navigation, error) {
	nav := &navigation{}
	lastHref := ""
	settledSince := time.Now()
	submittedLogin := false
	for {
		state, err := a.readState(tab)
		if err != nil {
			if tab.Err() != nil {
				return nav, fmt.Errorf("the browser did not settle: %w", tab.Err())
			}
			// The page is changing; read it again.
			time.Sleep(browserPoll)
			continue
		}
		nav.FinalURL, nav.Title, nav.Text = state.Href, state.Title, state.Text
		if state.Href != lastHref {
			lastHref, settledSince = state.Href, time.Now()
		}
		if u, err := url.Parse(state.Href); err == nil && u.Scheme+"://"+u.Host == a.origin {
			nav.ReachedHarness = true
			return nav, nil
		}

		acted := ""
		switch {
		case state.Marked || state.Ready == "loading":
		case state.Login:
			if options.stopAtLogin {
				nav.AtLogin = true
				return nav, nil
			}
			if submittedLogin {
				nav.LoginFailed = true
				return nav, nil
			}
			acted, submittedLogin = "login", true
			nav.Logins++
			if options.captureLogin && nav.LoginScreenshot == nil {
				nav.LoginScreenshot, _ = chromedp.Run(tab, chromedp.FullScreenshot(100))
			}
		case state.Consent:
			acted, submittedLogin = "consent", false
			nav.Consents++
		case state.Logout && options.confirmLogout:
			acted = "logout"
		case state.Ready == "complete" && time.Since(settledSince) >= pageSettleTime:
			return nav, nil
		}
		if acted != "" {
			if err := a.act(tab, acted); err != nil {
				return nav, fmt.Errorf("%s form: %w", acted, err)
			}
			settledSince = time.Now()
		}
		time.Sleep(browserPoll)
	}
}

// act fills in and submits the login form, or clicks the consent or logout
// button, and marks the document so that the driver waits for the next.
func (a *browserAgent) act(tab context.Context, action string) error {
	var script string
	switch action {
	case "login":
		script = fmt.Sprintf(`(() => {
  const set = (s, v) => { const e = document.querySelector(s); if (!e) return; e.focus(); e.value = v;
    e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); };
  set(%s, %s); set(%s, %s);
  window.__conformanceActed = true;
  const password = document.querySelector(%s);
  const form = password && password.form;
  const button = (form || document).querySelector(%s);
  if (button) { button.click(); } else if (form) { form.requestSubmit(); }
  return true;
})()`, jsString(a.selectors.Username), jsString(a.username), jsString(a.selectors.Password), jsString(a.password),
			jsString(a.selectors.Password), jsString(a.selectors.Submit))
	case "consent", "logout":
		selector := a.selectors.Consent
		if action == "logout" {
			selector = a.selectors.Logout
		}
		script = fmt.Sprintf(`(() => { window.__conformanceActed = true; document.querySelector(%s).click(); return true; })()`, jsString(selector))
	}
	_, err := chromedp.Run(tab, chromedp.Evaluate[bool](script))
	return err
}

func jsString(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}
