package bearer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Config contains a Verifier's settings. Issuer and Audience are required.
// Every other zero value takes the default documented on its field.
type Config struct {
	// Issuer is the provider's issuer identifier. A token's iss must equal
	// it exactly, after one trailing slash is removed here as the provider
	// removes it from its own. It must be an https URL, or http on a
	// loopback host, unless AllowInsecureHTTP is set.
	Issuer string

	// Audience is this resource server's identifier. A token's aud must
	// contain it (RFC 9068 §4).
	Audience string

	// Algorithms lists the JWS algorithms a token may be signed with.
	// Default: ES256 and RS256. Only asymmetric algorithms are accepted:
	// "none" and HS256, HS384 and HS512 make New fail, because an HMAC
	// "key" taken from a JWKS is public.
	Algorithms []string

	// Leeway is the clock skew allowed when checking exp, nbf and iat.
	// Default: DefaultLeeway. Negative values are invalid.
	Leeway time.Duration

	// JWKSURL, when set, is where the keys are fetched, and discovery is
	// skipped. Set it when this server reaches the provider at another
	// address than the issuer URL, as between containers.
	JWKSURL string

	// AllowInsecureHTTP permits http URLs on hosts other than loopback for
	// the issuer, the discovery document and the JWKS. Plain http lets
	// anyone on the path replace the keys, so set it only on a private
	// network that no one else can reach, such as a Compose network.
	AllowInsecureHTTP bool

	// HTTPClient fetches the discovery document and the JWKS. Default: a
	// client with a DefaultHTTPTimeout timeout.
	HTTPClient *http.Client

	// MinRefreshInterval is the minimum time between two fetches of the
	// keys, whatever triggers them, so that a flood of tokens with made-up
	// kids causes at most one fetch per interval. Default:
	// DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration

	// KeyMaxAge is how long a fetched key set is used before a request
	// triggers a background refresh. It bounds how long a key removed from
	// the JWKS is still trusted. Default: DefaultKeyMaxAge.
	KeyMaxAge time.Duration

	// Realm is the realm of WWW-Authenticate challenges. Default: Audience.
	Realm string

	// SessionCheck, when set, is called for every token that carries a sid
	// claim, after every other check has passed. A non-nil error rejects
	// the token as invalid_token, unless it wraps ErrUnavailable, which
	// gives 503. Tokens without sid (client credentials) are not checked.
	SessionCheck func(ctx context.Context, sid string) error

	// Now returns the current time. Default: time.Now. Tests set it.
	Now func() time.Time

	// Logger receives key fetch failures and rejected tokens, never a
	// token itself. Default: slog.Default().
	Logger *slog.Logger
}

// Defaults for the zero values of Config.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultMinRefreshInterval = 10 * time.Second
	DefaultKeyMaxAge          = 5 * time.Minute
	DefaultHTTPTimeout        = 10 * time.Second
)

// defaultAlgorithms are the algorithms the provider signs access tokens
// with: ES256 by default, RS256 when configured.
var defaultAlgorithms = []string{string(jose.ES256), string(jose.RS256)}

// supportedAlgorithms are the asymmetric JWS algorithms of RFC 7518 §3.1
// and RFC 8037 that go-jose verifies.
var supportedAlgorithms = map[string]bool{
	string(jose.RS256): true, string(jose.RS384): true, string(jose.RS512): true,
	string(jose.PS256): true, string(jose.PS384): true, string(jose.PS512): true,
	string(jose.ES256): true, string(jose.ES384): true, string(jose.ES512): true,
	string(jose.EdDSA): true,
}

// withDefaults returns a copy of cfg with defaults applied, or an error
// that lists every invalid setting.
func (cfg Config) withDefaults() (Config, error) {
	var problems []error

	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	if cfg.Issuer == "" {
		problems = append(problems, errors.New("missing issuer"))
	} else if err := checkIssuer(cfg.Issuer, cfg.AllowInsecureHTTP); err != nil {
		problems = append(problems, err)
	}
	if cfg.JWKSURL != "" {
		if err := checkURL("JWKS URL", cfg.JWKSURL, cfg.AllowInsecureHTTP); err != nil {
			problems = append(problems, err)
		}
	}

	if cfg.Audience == "" {
		problems = append(problems, errors.New("missing audience: set the identifier that tokens for this resource server carry in aud"))
	}

	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = defaultAlgorithms
	}
	for _, algorithm := range cfg.Algorithms {
		if !supportedAlgorithms[algorithm] {
			problems = append(problems, fmt.Errorf("algorithm %q is not accepted: use asymmetric algorithms such as ES256 or RS256", algorithm))
		}
	}

	durations := []struct {
		name     string
		value    *time.Duration
		fallback time.Duration
	}{
		{"leeway", &cfg.Leeway, DefaultLeeway},
		{"minimum refresh interval", &cfg.MinRefreshInterval, DefaultMinRefreshInterval},
		{"key max age", &cfg.KeyMaxAge, DefaultKeyMaxAge},
	}
	for _, d := range durations {
		if *d.value < 0 {
			problems = append(problems, fmt.Errorf("%s %s is negative", d.name, *d.value))
		}
		if *d.value == 0 {
			*d.value = d.fallback
		}
	}

	if cfg.Realm == "" {
		cfg.Realm = cfg.Audience
	}
	if !isQuotable(cfg.Realm) {
		problems = append(problems, fmt.Errorf("realm %q contains a quote, a backslash or a non-printable character", cfg.Realm))
	}

	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, errors.Join(problems...)
}

// checkIssuer requires what checkURL requires, and no query or fragment, as
// the Issuer Identifier of OpenID Connect Core 1.0 §1.2 has none.
func checkIssuer(issuer string, allowInsecure bool) error {
	if err := checkURL("issuer", issuer, allowInsecure); err != nil {
		return err
	}
	u, _ := url.Parse(issuer)
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q must not have a query or fragment", issuer)
	}
	return nil
}

// checkURL requires an absolute https URL, or an http one on a loopback
// host or when allowInsecure is set.
func checkURL(name, raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q is not an absolute URL", name, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowInsecure || isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s %q uses http on a non-loopback host: use https, or set AllowInsecureHTTP on a private network", name, raw)
	default:
		return fmt.Errorf("%s %q must use https", name, raw)
	}
}

func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isQuotable reports whether s can stand inside a quoted-string of an
// RFC 6750 §3 challenge without escaping: printable ASCII other than '"'
// and '\'.
func isQuotable(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}
