package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

// Options configures a conformance run.
type Options struct {
	// Issuer is the OpenID provider's issuer identifier. Discovery is
	// fetched from Issuer + "/.well-known/openid-configuration".
	Issuer string
	// Plans names the plans to run (see PlanNames), or "all".
	Plans []string
	// Modules, when not empty, limits the run to these module names. Each
	// must be a module the harness implements, and at least one must be in
	// the selected plans.
	Modules []string
	// ResponseType is the response_type of the dynamic plan, "code" by
	// default.
	ResponseType string

	// Username and Password sign the test user in whenever the provider
	// shows its login form.
	Username string
	Password string
	// LoginHint is the login_hint of oidcc-login-hint. Empty means
	// "buffy@" followed by the issuer's host, as the official suite sends.
	LoginHint string
	// Selectors find the login and consent forms. Zero fields take the
	// defaults of Latchkey's pages (see DefaultSelectors).
	Selectors Selectors

	// HTTPClient sends every request to the provider, including those of
	// the HTTP browser driver, which copies its Transport. It must trust the
	// provider's certificate. Nil means a client built from CAFile and
	// InsecureSkipVerify.
	HTTPClient *http.Client
	// CAFile is a PEM file of certificates to trust for the provider.
	CAFile string
	// InsecureSkipVerify trusts any certificate of the provider.
	InsecureSkipVerify bool
	// BrowserIgnoreCertificateErrors starts Chromium with
	// --ignore-certificate-errors. The command sets it when CAFile or
	// InsecureSkipVerify is given, because Chromium cannot take a CA file.
	BrowserIgnoreCertificateErrors bool

	// Listen is the address of the callback server, 127.0.0.1:0 by
	// default. Static clients need a fixed port.
	Listen string
	// CallbackTLS serves the callback server over https with a generated
	// self-signed certificate, for providers that demand https redirect
	// URIs.
	CallbackTLS bool

	// RegistrationToken is sent as a Bearer initial access token to the
	// registration endpoint.
	RegistrationToken string
	// Clients are static clients. With them, or when discovery has no
	// registration_endpoint, no client is registered dynamically and the
	// modules run one at a time, because they share the callback URLs.
	Clients *StaticClients

	// RotateKeys rotates the provider's signing keys for
	// oidcc-server-rotate-keys. Without it that module is SKIPPED.
	RotateKeys func(context.Context) error
	// JWKSRefreshDelay is how long oidcc-refresh-token-rp-key-rotation
	// waits after rotating the client's key; 60s by default, at least 1s.
	JWKSRefreshDelay time.Duration
	// NoRedirectWait is how long a module that expects an error page waits
	// for a redirect that must not come; 3s by default.
	NoRedirectWait time.Duration
	// Parallel is how many modules run at once, 8 by default.
	Parallel int

	// ChromiumPath is the Chromium binary. Empty looks up "chromium" in
	// PATH. Without Chromium the modules that need a browser are SKIPPED.
	ChromiumPath string
	// DisableBrowser runs without Chromium even when one is installed.
	DisableBrowser bool
	// ArtifactsDir receives the screenshots, "conformance-artifacts" by
	// default.
	ArtifactsDir string

	// Logger receives progress records. Nil discards them.
	Logger *slog.Logger

	// waits replaces the official suite's waits in the harness's own
	// tests only.
	waits *waitTimes
	// chromiumFlags are extra Chromium flags for the harness's own tests.
	chromiumFlags map[string]any
	// callbackMaxTLS caps the callback server's TLS version in the
	// harness's own tests; zero allows TLS 1.3.
	callbackMaxTLS uint16
}

// waitTimes are the official suite's fixed waits.
type waitTimes struct {
	promptLogin   time.Duration
	maxAge1       time.Duration
	codeReuse     time.Duration
	postRequest   time.Duration
	beforeRefresh time.Duration
}

var suiteWaits = waitTimes{
	promptLogin:   time.Second,
	maxAge1:       2 * time.Second,
	codeReuse:     30 * time.Second,
	postRequest:   30 * time.Second,
	beforeRefresh: time.Second,
}

// Selectors are CSS selectors of the login and consent forms. The HTTP
// driver understands compound selectors of a tag, #id, .class and
// [attribute] or [attribute=value] parts, separated by commas.
type Selectors struct {
	Username string
	Password string
	Submit   string
	Consent  string
	// Logout is the button that confirms a logout on the provider's
	// confirmation page, for the logout modules that need the logout to
	// happen.
	Logout string
}

// DefaultSelectors returns the selectors of Latchkey's login, consent and
// logout pages.
func DefaultSelectors() Selectors {
	return Selectors{
		Username: "[name=username]",
		Password: "[name=password]",
		Submit:   "button[type=submit], input[type=submit]",
		Consent:  "button[name=decision][value=allow]",
		Logout:   "button[name=decision][value=logout]",
	}
}

func (s Selectors) withDefaults() Selectors {
	d := DefaultSelectors()
	if s.Username == "" {
		s.Username = d.Username
	}
	if s.Password == "" {
		s.Password = d.Password
	}
	if s.Submit == "" {
		s.Submit = d.Submit
	}
	if s.Consent == "" {
		s.Consent = d.Consent
	}
	if s.Logout == "" {
		s.Logout = d.Logout
	}
	return s
}

// StaticClient is a client registered at the provider beforehand.
type StaticClient struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// StaticClients are the three clients of the official suite's static
// configuration: client, client2 for oidcc-refresh-token, and
// client_secret_post for oidcc-server-client-secret-post. Each must have
// registered the callback server's /callback URL, and for the logout plans
// /post_logout_redirect, /backchannel_logout and /frontchannel_logout.
type StaticClients struct {
	Client           StaticClient `json:"client"`
	Client2          StaticClient `json:"client2"`
	ClientSecretPost StaticClient `json:"client_secret_post"`
}

// LoadStaticClients reads static clients from a JSON file.
func LoadStaticClients(path string) (*StaticClients, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read clients file: %w", err)
	}
	var clients StaticClients
	decoder := json.NewDecoder(strings.NewReader(string(data)))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&clients); err != nil {
		return nil, fmt.Errorf("clients file %s is invalid: %w", path, err)
	}
	var missing []string
	for name, c := range map[string]StaticClient{"client": clients.Client, "client2": clients.Client2, "client_secret_post": clients.ClientSecretPost} {
		if c.ClientID == "" || c.ClientSecret == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("clients file %s: missing client_id or client_secret for %s", path, strings.Join(missing, ", "))
	}
	return &clients, nil
}

// validate checks the options and fills in defaults.
func (o *Options) validate() error {
	var problems []string
	if o.Issuer == "" {
		problems = append(problems, "missing issuer")
	}
	if o.Username == "" || o.Password == "" {
		problems = append(problems, "missing username or password of the test user")
	}
	if len(o.Plans) == 0 {
		problems = append(problems, "missing plan: name one or more of "+strings.Join(PlanNames(), ", ")+", or all")
	}
	for _, plan := range o.Plans {
		if plan != "all" && planByName(plan) == nil {
			problems = append(problems, fmt.Sprintf("unknown plan %q: use one of %s, or all", plan, strings.Join(PlanNames(), ", ")))
		}
	}
	for _, module := range o.Modules {
		if moduleRegistry[module] == nil {
			problems = append(problems, fmt.Sprintf("unknown module %q: use a module name of the official suite, such as oidcc-server", module))
		}
	}
	if o.ResponseType == "" {
		o.ResponseType = "code"
	}
	if !isOIDCResponseType(o.ResponseType) {
		problems = append(problems, fmt.Sprintf("response type %q is not one of code, id_token, id_token token, code id_token, code token, code id_token token", o.ResponseType))
	}
	o.ResponseType = normalizeResponseType(o.ResponseType)
	if o.JWKSRefreshDelay == 0 {
		o.JWKSRefreshDelay = 60 * time.Second
	}
	if o.JWKSRefreshDelay < time.Second || o.JWKSRefreshDelay > 60*time.Second {
		problems = append(problems, fmt.Sprintf("JWKS refresh delay %s is outside 1s to 60s", o.JWKSRefreshDelay))
	}
	if o.NoRedirectWait <= 0 {
		o.NoRedirectWait = 3 * time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Clients != nil && strings.HasSuffix(o.Listen, ":0") {
		problems = append(problems, "static clients need a fixed callback port: set the listen address to the host:port whose /callback URL the clients registered")
	}
	if o.ArtifactsDir == "" {
		o.ArtifactsDir = "conformance-artifacts"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.waits == nil {
		w := suiteWaits
		o.waits = &w
	}
	o.Issuer = strings.TrimSuffix(o.Issuer, "/")
	o.Selectors = o.Selectors.withDefaults()
	if len(problems) > 0 {
		return errors.New("invalid conformance options: " + strings.Join(problems, "; "))
	}
	return nil
}
