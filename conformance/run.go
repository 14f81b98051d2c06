package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// moduleTimeout bounds one module, waits included.
const moduleTimeout = 5 * time.Minute

// harness is the state the modules of a run share.
type harness struct {
	opts      *Options
	http      *http.Client
	callbacks *callbackServer
	selectors pageSelectors
	// static holds the static clients, nil when clients are registered
	// dynamically.
	static  *StaticClients
	browser *browserPool
	// browserUnavailable is the reason modules run without Chromium.
	browserUnavailable string

	nextID   int
	idMu     sync.Mutex
	sharedMu sync.Mutex
}

// Run runs the selected plans against the provider at opts.Issuer and
// returns the report. It returns an error only when the run cannot start;
// failures of the provider are in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	h, err := newHarness(ctx, &opts)
	if err != nil {
		return nil, err
	}
	defer h.close()

	planned := plannedModules(&opts, h.static != nil)
	if len(planned) == 0 {
		return nil, fmt.Errorf("no module of plans %s matches modules %s: pick modules that the plans contain", strings.Join(opts.Plans, ", "), strings.Join(opts.Modules, ", "))
	}
	report := &Report{Issuer: opts.Issuer, Started: time.Now().UTC()}
	report.Modules = make([]*ModuleReport, len(planned))
	h.needBrowser(planned)

	parallel := opts.Parallel
	if h.static != nil {
		// Static clients share one set of callback URLs, so a response
		// could not be distinguished from another module's.
		parallel = 1
	}
	var exclusive []int
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, pm := range planned {
		if pm.skipReason != "" {
			report.Modules[i] = skippedModule(pm)
			continue
		}
		if pm.spec.exclusive {
			exclusive = append(exclusive, i)
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			report.Modules[i] = h.runModule(ctx, pm)
		}()
	}
	wg.Wait()
	for _, i := range exclusive {
		if ctx.Err() != nil {
			break
		}
		report.Modules[i] = h.runModule(ctx, planned[i])
	}
	for i, pm := range planned {
		if report.Modules[i] == nil {
			report.Modules[i] = notStartedModule(pm)
		}
	}

	report.Finished = time.Now().UTC()
	report.count()
	return report, nil
}

// skippedModule reports a module that is not applicable without running
// it.
func skippedModule(pm plannedModule) *ModuleReport {
	return &ModuleReport{Plan: pm.plan.Name, Variant: pm.variant.String(), Module: pm.spec.Name,
		Result: ResultSkipped, Reason: pm.skipReason}
}

// notStartedModule reports a module that the run's cancellation kept from
// starting.
func notStartedModule(pm plannedModule) *ModuleReport {
	return &ModuleReport{Plan: pm.plan.Name, Variant: pm.variant.String(), Module: pm.spec.Name,
		Result: ResultInterrupted, Reason: "the run was cancelled before the module started"}
}

func newHarness(ctx context.Context, opts *Options) (*harness, error) {
	h := &harness{opts: opts, static: opts.Clients}
	var err error
	if h.selectors, err = compileSelectors(opts.Selectors); err != nil {
		return nil, err
	}
	if h.http, err = providerClient(opts); err != nil {
		return nil, err
	}
	if h.callbacks, err = startCallbackServer(opts.Listen, opts.CallbackTLS, opts.Logger, opts.callbackMaxTLS); err != nil {
		return nil, err
	}
	if h.static == nil {
		if err := h.chooseRegistration(ctx); err != nil {
			h.callbacks.close()
			return nil, err
		}
	}
	return h, nil
}

// chooseRegistration fails when the discovery document cannot be fetched
// at all, a wrong issuer or certificate most likely, and when the provider
// offers no dynamic registration and no static clients were given. A
// document that is not JSON is left to the modules, which report it.
func (h *harness) chooseRegistration(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.opts.Issuer+discoveryPath, nil)
	if err != nil {
		return fmt.Errorf("invalid issuer %q: %w", h.opts.Issuer, err)
	}
	result := h.send(req)
	if result.Err != nil {
		return fmt.Errorf("fetch the discovery document: %w (check --issuer, and --ca-file for a private certificate)", result.Err)
	}
	var document map[string]any
	if json.Unmarshal(result.Body, &document) != nil {
		return nil
	}
	if _, ok := document["registration_endpoint"].(string); !ok {
		return fmt.Errorf("the provider's discovery document has no registration_endpoint: register the clients beforehand and pass them with --clients")
	}
	return nil
}

// providerClient returns the HTTP client for the provider: opts.HTTPClient,
// or one that trusts CAFile.
func providerClient(opts *Options) (*http.Client, error) {
	base := opts.HTTPClient
	if base == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: opts.InsecureSkipVerify}
		if opts.CAFile != "" {
			pem, err := os.ReadFile(opts.CAFile)
			if err != nil {
				return nil, fmt.Errorf("read CA file: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA file %s contains no PEM certificate: give a file of PEM certificates", opts.CAFile)
			}
			transport.TLSClientConfig.RootCAs = pool
		}
		base = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	}
	client := *base
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client, nil
}

// needBrowser starts Chromium when a planned module prefers it.
func (h *harness) needBrowser(planned []plannedModule) {
	needed := false
	for _, pm := range planned {
		needed = needed || (pm.spec.browser && pm.skipReason == "")
	}
	if !needed {
		return
	}
	if h.opts.DisableBrowser {
		h.browserUnavailable = "the browser is disabled"
		return
	}
	path := h.opts.ChromiumPath
	if path == "" {
		found, err := exec.LookPath("chromium")
		if err != nil {
			h.browserUnavailable = "no chromium in PATH (install Debian's chromium or pass --chromium)"
			return
		}
		path = found
	}
	// With CallbackTLS, Chromium must also accept the callback server's own
	// self-signed certificate.
	ignoreCertificates := h.opts.BrowserIgnoreCertificateErrors || h.opts.CallbackTLS
	var allowedHosts []string
	for _, origin := range []string{h.opts.Issuer, h.callbacks.origin} {
		if parsed, err := url.Parse(origin); err == nil {
			allowedHosts = append(allowedHosts, parsed.Hostname())
		}
	}
	pool, err := startBrowser(path, ignoreCertificates, allowedHosts, h.opts.chromiumFlags)
	if err != nil {
		h.browserUnavailable = fmt.Sprintf("starting %s failed: %v", path, err)
		h.opts.Logger.Warn("chromium unavailable", "path", path, "error", err)
		return
	}
	h.browser = pool
}

func (h *harness) close() {
	if h.browser != nil {
		h.browser.close()
	}
	h.callbacks.close()
}

func (h *harness) newID() string {
	h.idMu.Lock()
	defer h.idMu.Unlock()
	h.nextID++
	return fmt.Sprintf("%d%s", h.nextID, randomString(6))
}

// runModule runs one module and returns its report. A module ends at its
// first Fatal finding or skip; its dynamic clients are deleted afterwards.
func (h *harness) runModule(parent context.Context, pm plannedModule) *ModuleReport {
	start := time.Now()
	ctx, cancel := context.WithTimeout(parent, moduleTimeout)
	defer cancel()
	shared := h.static != nil
	if shared {
		h.sharedMu.Lock()
		defer h.sharedMu.Unlock()
	}

	m := &moduleRun{ctx: ctx, h: h, plan: pm.plan.Name, variant: pm.variant, spec: pm.spec, id: h.newID()}
	m.inbox, m.base = h.callbacks.register(m.id, shared)
	defer h.callbacks.unregister(m.id, m.inbox)
	m.agent = h.newAgent(ctx, pm.spec.browser)
	defer m.agent.close()
	h.opts.Logger.Debug("module started", "plan", pm.plan.Name, "variant", pm.variant.String(), "module", pm.spec.Name)

	m.guard(func() { pm.spec.run(m) })
	m.guard(m.unregister)

	result, reason := combineResult(m.findings, m.skipReason, m.screenshots, m.reviewReason)
	if parent.Err() != nil {
		// The findings of a module cut short by the run's cancellation show
		// nothing reliable about the provider.
		result, reason = ResultInterrupted, "the run was cancelled while the module ran: "+reason
	}
	h.opts.Logger.Debug("module finished", "plan", pm.plan.Name, "variant", pm.variant.String(), "module", pm.spec.Name, "result", result)
	return &ModuleReport{
		Plan: pm.plan.Name, Variant: pm.variant.String(), Module: pm.spec.Name,
		Result: result, Reason: reason, Findings: m.findings, Extras: m.extras,
		Screenshots: m.screenshots, Duration: time.Since(start),
	}
}

// guard runs f, recovering the module's stop and turning any other panic,
// a bug of the harness, into a failure with its stack in the report.
func (m *moduleRun) guard(f func()) {
	defer func() {
		recovered := recover()
		if recovered == nil {
			return
		}
		if _, stopped := recovered.(moduleStop); stopped {
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		m.findings = append(m.findings, Finding{Check: "harness-error", Severity: Failure,
			Message: fmt.Sprintf("the harness failed: %v\n%s", recovered, debug.Stack())})
	}()
	f()
}

func (h *harness) newAgent(ctx context.Context, preferBrowser bool) userAgent {
	if preferBrowser && h.browser != nil {
		agent, err := h.browser.newAgent(h.callbacks.origin, h.opts)
		if err == nil {
			return agent
		}
		h.opts.Logger.Warn("opening a browser tab failed", "error", err)
	}
	transport := h.http.Transport
	if h.callbacks.certificate != nil {
		transport = trustCallbackCertificate(transport, h.callbacks.certificate)
	}
	return newHTTPAgent(&http.Client{Transport: transport, Timeout: h.http.Timeout}, h.callbacks.origin, h.opts.Issuer, h.selectors, h.opts.Username, h.opts.Password)
}

// trustCallbackCertificate returns a transport that also trusts the
// callback server's self-signed certificate.
func trustCallbackCertificate(base http.RoundTripper, cert *x509.Certificate) http.RoundTripper {
	var transport *http.Transport
	if t, ok := base.(*http.Transport); ok && t != nil {
		transport = t.Clone()
	} else {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if transport.TLSClientConfig != nil {
		config = transport.TLSClientConfig.Clone()
	}
	pool := config.RootCAs
	if pool == nil {
		pool, _ = x509.SystemCertPool()
		if pool == nil {
			pool = x509.NewCertPool()
		}
	} else {
		pool = pool.Clone()
	}
	pool.AddCert(cert)
	config.RootCAs = pool
	transport.TLSClientConfig = config
	return transport
}
