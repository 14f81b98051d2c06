// Package config is Latchkey's typed configuration: one struct, filled from
// command-line flags and LATCHKEY_* environment variables, and validated all
// at once. Flags win over the environment. The environment wins over
// defaults.
package config

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/pflag"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// Config contains every setting of the latchkey binary.
type Config struct {
	// Dev enables the embedded development defaults: a generated system
	// secret in the data folder, an http issuer on 127.0.0.1, automatic
	// migrations and demo data.
	Dev bool

	// ConfigFile is an optional YAML file of settings, keyed by flag name
	// with '_' for '-'.
	ConfigFile string

	Issuer       string
	ProviderAddr string
	UserAPIAddr  string
	// UserAPIAudience is the aud the user API requires in access tokens;
	// empty means the issuer, the provider's default audience.
	UserAPIAudience string
	// UserAPISessionCheck makes the user API reject access tokens whose
	// login session (sid) has ended.
	UserAPISessionCheck bool
	SessionAPIAddr      string
	// SessionAPIAudience is the aud the session API requires in access
	// tokens; empty means the issuer.
	SessionAPIAudience string
	// SessionAPISessionCheck makes the session API reject access tokens
	// whose login session (sid) has ended.
	SessionAPISessionCheck bool
	// JWKSURL is the URL resource servers fetch the provider's keys from
	// when they reach it at another address than the issuer URL. Empty
	// means discovery at the issuer.
	JWKSURL string
	// AllowInsecureJWKS lets resource servers fetch keys over plain http
	// from a non-loopback host: only on a private network such as Compose's.
	AllowInsecureJWKS bool
	// AllowPrivateFetches lets the provider fetch clients' jwks_uri and
	// request_uri from loopback and private addresses. --dev implies it.
	AllowPrivateFetches bool
	DataDir             string
	DatabaseURL         Secret
	// RedisURL selects Redis for login sessions; empty keeps them in memory.
	RedisURL       Secret
	RedisKeyPrefix string

	SystemSecret     Secret
	SystemSecretFile string

	AccessTokenLifetime       time.Duration
	RefreshTokenLifetime      time.Duration
	IDTokenLifetime           time.Duration
	AuthorizationCodeLifetime time.Duration
	LoginSessionLifetime      time.Duration
	LoginSessionIdleTimeout   time.Duration
	AccessTokenAlgorithm      string
	// MFALockout is how long the MFA step stays locked after five wrong
	// codes.
	MFALockout time.Duration

	// Migrate applies pending schema migrations when serve starts.
	Migrate bool
	// JanitorInterval is how often serve deletes expired records; zero
	// turns the periodic cleanup off.
	JanitorInterval time.Duration
	// AuditRetention is how long audit events are kept; zero keeps them
	// forever.
	AuditRetention time.Duration
	LogLevel       string

	// TLSCertFile and TLSKeyFile are PEM files of the certificate (with its
	// chain) and private key that every listener of serve uses. Both or
	// neither must be set. With neither, serve speaks plain HTTP and expects
	// a proxy in front to terminate TLS.
	TLSCertFile string
	TLSKeyFile  string

	// Registration is who may register clients at the provider's
	// registration endpoint: off, open or token.
	Registration provider.RegistrationMode
	// RegistrationToken is the initial access token that registration mode
	// token requires.
	RegistrationToken Secret
}

// Secret is a string that redacts itself in logs and fmt output.
type Secret string

func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }
func (Secret) String() string       { return "[redacted]" }

type setting struct {
	flag, help string
	// secret settings may also come from a file named by <VARIABLE>_FILE,
	// and may not be written inline in the YAML file.
	secret bool
}

// settings lists every flag with its environment variable. The flag name,
// upper-cased with '-' as '_' and prefixed LATCHKEY_, is the variable.
var settings = []setting{
	{"config", "YAML file of settings, keyed by flag name with '_' for '-'", false},
	{"dev", "run with development defaults: generated secret, http issuer on 127.0.0.1, demo client and user", false},
	{"issuer", "issuer URL that tokens name and clients discover, e.g. https://login.example.com", false},
	{"provider-addr", "host:port the provider listens on", false},
	{"userapi-addr", "host:port the user API listens on", false},
	{"userapi-audience", "audience the user API requires in access tokens (default: the issuer URL)", false},
	{"userapi-session-check", "reject, in the user API, access tokens whose login session has ended", false},
	{"sessionapi-addr", "host:port the session API listens on", false},
	{"sessionapi-audience", "audience the session API requires in access tokens (default: the issuer URL)", false},
	{"sessionapi-session-check", "reject, in the session API, access tokens whose login session has ended", false},
	{"jwks-url", "where the user and session APIs fetch the provider's keys (default: discovery at the issuer)", false},
	{"allow-insecure-jwks", "let the user and session APIs fetch keys over http from a non-loopback host; only on a private network", false},
	{"allow-private-fetches", "let the provider fetch clients' jwks_uri and request_uri from loopback and private addresses (implied by --dev)", false},
	{"data-dir", "folder for the embedded SQLite database and, with --dev, the generated system secret", false},
	{"database-url", "database: postgres://user:password@host:5432/name, or a SQLite file path (default: latchkey.db in the data folder)", true},
	{"redis-url", "Redis for login sessions, e.g. redis://host:6379/0 (default: sessions in process memory)", true},
	{"redis-key-prefix", "prefix of every Redis key Latchkey writes", false},
	{"system-secret", "system secret (at least 32 bytes) from which token, cookie and key-encryption keys are derived; prefer LATCHKEY_SYSTEM_SECRET or --system-secret-file", true},
	{"system-secret-file", "file holding the system secret", false},
	{"access-token-lifetime", "lifetime of access tokens, a Go duration such as 15m or 24h", false},
	{"refresh-token-lifetime", "lifetime of refresh tokens, a Go duration such as 15m or 24h", false},
	{"id-token-lifetime", "lifetime of ID tokens, a Go duration such as 15m or 24h", false},
	{"authorization-code-lifetime", "lifetime of authorization codes, a Go duration such as 15m or 24h", false},
	{"login-session-lifetime", "absolute lifetime of a login session, a Go duration such as 15m or 24h", false},
	{"login-session-idle-timeout", "a login session unused for this long ends, a Go duration such as 15m or 24h", false},
	{"mfa-lockout", "how long two-step verification stays locked for an account after five wrong codes, such as 15m", false},
	{"access-token-algorithm", "access token signing algorithm: ES256 or RS256", false},
	{"migrate", "apply pending database migrations before serving", false},
	{"janitor-interval", "how often serve deletes expired codes, tokens and sessions; 0 turns it off", false},
	{"audit-retention", "how long audit events are kept before the janitor deletes them, such as 2160h; 0 keeps them forever", false},
	{"log-level", "log level: debug, info, warn or error", false},
	{"tls-cert-file", "PEM certificate chain that serve's listeners use for HTTPS; needs --tls-key-file and an https issuer", false},
	{"tls-key-file", "PEM private key of --tls-cert-file", false},
	{"registration", "dynamic client registration (RFC 7591): off, open (anyone may register a client) or token (registering needs --registration-token)", false},
	{"registration-token", "initial access token that --registration token requires, at least 32 characters; prefer LATCHKEY_REGISTRATION_TOKEN or its _FILE form", true},
}

// EnvName returns the environment variable of a flag.
func EnvName(flag string) string {
	return "LATCHKEY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// BindFlags registers every setting on flags, with cfg's fields as targets
// and the built-in defaults.
func BindFlags(flags *pflag.FlagSet, cfg *Config) {
	help := map[string]string{}
	for _, s := range settings {
		help[s.flag] = s.help + " [" + EnvName(s.flag) + "]"
	}

	flags.StringVar(&cfg.ConfigFile, "config", "", help["config"])
	flags.BoolVar(&cfg.Dev, "dev", false, help["dev"])
	flags.StringVar(&cfg.Issuer, "issuer", "", help["issuer"])
	flags.StringVar(&cfg.ProviderAddr, "provider-addr", "127.0.0.1:3001", help["provider-addr"])
	flags.StringVar(&cfg.UserAPIAddr, "userapi-addr", "127.0.0.1:3003", help["userapi-addr"])
	flags.StringVar(&cfg.UserAPIAudience, "userapi-audience", "", help["userapi-audience"])
	flags.BoolVar(&cfg.UserAPISessionCheck, "userapi-session-check", true, help["userapi-session-check"])
	flags.StringVar(&cfg.SessionAPIAddr, "sessionapi-addr", "127.0.0.1:3002", help["sessionapi-addr"])
	flags.StringVar(&cfg.SessionAPIAudience, "sessionapi-audience", "", help["sessionapi-audience"])
	flags.BoolVar(&cfg.SessionAPISessionCheck, "sessionapi-session-check", true, help["sessionapi-session-check"])
	flags.StringVar(&cfg.JWKSURL, "jwks-url", "", help["jwks-url"])
	flags.BoolVar(&cfg.AllowInsecureJWKS, "allow-insecure-jwks", false, help["allow-insecure-jwks"])
	flags.BoolVar(&cfg.AllowPrivateFetches, "allow-private-fetches", false, help["allow-private-fetches"])
	flags.StringVar(&cfg.DataDir, "data-dir", "data", help["data-dir"])
	flags.StringVar((*string)(&cfg.DatabaseURL), "database-url", "", help["database-url"])
	flags.StringVar((*string)(&cfg.RedisURL), "redis-url", "", help["redis-url"])
	flags.StringVar(&cfg.RedisKeyPrefix, "redis-key-prefix", "latchkey:", help["redis-key-prefix"])
	flags.StringVar((*string)(&cfg.SystemSecret), "system-secret", "", help["system-secret"])
	flags.StringVar(&cfg.SystemSecretFile, "system-secret-file", "", help["system-secret-file"])
	flags.DurationVar(&cfg.AccessTokenLifetime, "access-token-lifetime", provider.DefaultAccessTokenLifetime, help["access-token-lifetime"])
	flags.DurationVar(&cfg.RefreshTokenLifetime, "refresh-token-lifetime", provider.DefaultRefreshTokenLifetime, help["refresh-token-lifetime"])
	flags.DurationVar(&cfg.IDTokenLifetime, "id-token-lifetime", provider.DefaultIDTokenLifetime, help["id-token-lifetime"])
	flags.DurationVar(&cfg.AuthorizationCodeLifetime, "authorization-code-lifetime", provider.DefaultAuthorizationCodeLifetime, help["authorization-code-lifetime"])
	flags.DurationVar(&cfg.LoginSessionLifetime, "login-session-lifetime", provider.DefaultLoginSessionLifetime, help["login-session-lifetime"])
	flags.DurationVar(&cfg.LoginSessionIdleTimeout, "login-session-idle-timeout", provider.DefaultLoginSessionIdleTimeout, help["login-session-idle-timeout"])
	flags.DurationVar(&cfg.MFALockout, "mfa-lockout", provider.DefaultMFALockout, help["mfa-lockout"])
	flags.StringVar(&cfg.AccessTokenAlgorithm, "access-token-algorithm", provider.AlgES256, help["access-token-algorithm"])
	flags.BoolVar(&cfg.Migrate, "migrate", false, help["migrate"])
	flags.DurationVar(&cfg.JanitorInterval, "janitor-interval", time.Hour, help["janitor-interval"])
	flags.DurationVar(&cfg.AuditRetention, "audit-retention", 0, help["audit-retention"])
	flags.StringVar(&cfg.LogLevel, "log-level", "info", help["log-level"])
	flags.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", help["tls-cert-file"])
	flags.StringVar(&cfg.TLSKeyFile, "tls-key-file", "", help["tls-key-file"])
	flags.StringVar((*string)(&cfg.Registration), "registration", string(provider.RegistrationOff), help["registration"])
	flags.StringVar((*string)(&cfg.RegistrationToken), "registration-token", "", help["registration-token"])
}

// Load fills every flag that was not given on the command line, first from
// its LATCHKEY_* variable (or, for a secret, from the file named by
// LATCHKEY_*_FILE), then from the YAML file named by --config or
// LATCHKEY_CONFIG. It reports every value that does not parse at once. An
// empty variable counts as unset.
func Load(flags *pflag.FlagSet) error {
	var problems []error
	fromFile := map[string]string{}
	configFile := ""
	if flag := flags.Lookup("config"); flag != nil {
		configFile = flag.Value.String()
		if !flag.Changed {
			configFile = os.Getenv(EnvName("config"))
		}
	}
	if configFile != "" {
		values, err := readConfigFile(configFile)
		if err != nil {
			return err
		}
		fromFile = values
	}

	for _, s := range settings {
		flag := flags.Lookup(s.flag)
		if flag == nil || flag.Changed {
			continue
		}
		value, source, err := lookupSetting(s, fromFile)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if source == "" {
			continue
		}
		if err := flags.Set(s.flag, value); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", source, err))
		}
	}
	return errors.Join(problems...)
}

// lookupSetting returns a setting's value from the environment or the
// config file, and where it came from ("" when it is set nowhere).
func lookupSetting(s setting, fromFile map[string]string) (value, source string, err error) {
	name := EnvName(s.flag)
	if value := os.Getenv(name); value != "" {
		return value, name, nil
	}
	if path := os.Getenv(name + "_FILE"); s.secret && path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimSpace(string(data)), name + "_FILE", nil
	}
	key := strings.ReplaceAll(s.flag, "-", "_")
	if value, ok := fromFile[key]; ok {
		return value, "config file key " + key, nil
	}
	return "", "", nil
}

// readConfigFile reads a YAML mapping of setting names to values. Unknown
// keys are errors, so that a misspelt setting is not silently ignored, and
// so are inline secrets, which belong in the environment or a file.
func readConfigFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("config file %s is not a YAML mapping: %w", path, err)
	}

	known := map[string]setting{}
	for _, s := range settings {
		known[strings.ReplaceAll(s.flag, "-", "_")] = s
	}
	values := map[string]string{}
	var problems []error
	for key, value := range raw {
		_, ok := known[key]
		switch {
		case !ok || key == "config":
			problems = append(problems, fmt.Errorf("config file %s: unknown setting %q", path, key))
		case key == "system_secret":
			problems = append(problems, fmt.Errorf("config file %s: write system_secret_file, not the secret itself", path))
		default:
			values[key] = fmt.Sprint(value)
		}
	}
	return values, errors.Join(problems...)
}

// Resolve fills derived settings: the secret from its file, the database
// URL from the data folder, and in dev mode the issuer and a generated
// system secret kept in the data folder. It returns the path of a secret it
// generated, or "".
func (c *Config) Resolve() (generated string, err error) {
	if c.DatabaseURL == "" {
		c.DatabaseURL = Secret(storage.SQLitePath(c.DataDir))
	}
	if c.SystemSecret == "" && c.SystemSecretFile != "" {
		data, err := os.ReadFile(c.SystemSecretFile)
		if err != nil {
			return "", fmt.Errorf("read system secret file: %w", err)
		}
		c.SystemSecret = Secret(strings.TrimSpace(string(data)))
	}
	if !c.Dev {
		return "", nil
	}

	if c.Issuer == "" {
		c.Issuer = devIssuer(c.ProviderAddr, c.TLSCertFile != "")
	}
	if c.SystemSecret == "" {
		return c.loadOrCreateDevSecret()
	}
	return "", nil
}

// devIssuer returns the development issuer for the provider's listen
// address: https when serve has a TLS certificate, http otherwise.
func devIssuer(addr string, useTLS bool) string {
	scheme := "http://"
	if useTLS {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "127.0.0.1:3001"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return scheme + net.JoinHostPort(host, port)
}

// loadOrCreateDevSecret reads the development secret from the data folder,
// creating it on first start.
func (c *Config) loadOrCreateDevSecret() (string, error) {
	path := filepath.Join(c.DataDir, "system-secret")
	data, err := os.ReadFile(path)
	if err == nil {
		c.SystemSecret = Secret(strings.TrimSpace(string(data)))
		return "", nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read development system secret: %w", err)
	}

	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data folder: %w", err)
	}
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	secret := base64.RawURLEncoding.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write development system secret: %w", err)
	}
	c.SystemSecret = Secret(secret)
	return path, nil
}

// Validate reports every problem with the settings in one error.
func (c *Config) Validate() error {
	var problems []error
	if c.Issuer == "" {
		problems = append(problems, fmt.Errorf("missing issuer URL: set --issuer or %s", EnvName("issuer")))
	} else if err := provider.ValidateIssuer(c.Issuer); err != nil {
		problems = append(problems, err)
	}

	switch {
	case c.SystemSecret == "":
		problems = append(problems, fmt.Errorf("missing system secret: set %s or %s (at least %d bytes, e.g. from 'openssl rand -base64 48'), or pass --dev",
			EnvName("system-secret"), EnvName("system-secret-file"), provider.MinSystemSecretLength))
	case len(c.SystemSecret) < provider.MinSystemSecretLength:
		problems = append(problems, fmt.Errorf("system secret is %d bytes; at least %d are required", len(c.SystemSecret), provider.MinSystemSecretLength))
	}

	if c.AccessTokenAlgorithm != provider.AlgES256 && c.AccessTokenAlgorithm != provider.AlgRS256 {
		problems = append(problems, fmt.Errorf("access token algorithm %q is not supported: use ES256 or RS256", c.AccessTokenAlgorithm))
	}
	durations := map[string]time.Duration{
		"access-token-lifetime":       c.AccessTokenLifetime,
		"refresh-token-lifetime":      c.RefreshTokenLifetime,
		"id-token-lifetime":           c.IDTokenLifetime,
		"authorization-code-lifetime": c.AuthorizationCodeLifetime,
		"login-session-lifetime":      c.LoginSessionLifetime,
		"login-session-idle-timeout":  c.LoginSessionIdleTimeout,
		"mfa-lockout":                 c.MFALockout,
	}
	for _, s := range settings {
		if value, ok := durations[s.flag]; ok && value <= 0 {
			problems = append(problems, fmt.Errorf("%s must be positive, got %s", s.flag, value))
		}
	}
	for name, addr := range map[string]string{"provider-addr": c.ProviderAddr, "userapi-addr": c.UserAPIAddr, "sessionapi-addr": c.SessionAPIAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			problems = append(problems, fmt.Errorf("%s %q is not host:port", name, addr))
		}
	}
	if _, err := c.Level(); err != nil {
		problems = append(problems, err)
	}
	if url := string(c.DatabaseURL); strings.Contains(url, "://") && !storage.IsPostgres(url) {
		problems = append(problems, errors.New("database-url must be postgres://... or postgresql://..., or a SQLite file path"))
	}
	if c.AuditRetention < 0 {
		problems = append(problems, fmt.Errorf("audit-retention must not be negative, got %s", c.AuditRetention))
	}
	if c.JanitorInterval < 0 {
		problems = append(problems, fmt.Errorf("janitor-interval must not be negative, got %s", c.JanitorInterval))
	}
	if c.RedisURL != "" && !strings.HasPrefix(string(c.RedisURL), "redis://") && !strings.HasPrefix(string(c.RedisURL), "rediss://") {
		problems = append(problems, errors.New("redis-url must start with redis:// or rediss://"))
	}
	problems = append(problems, c.validateTLS()...)
	switch err := provider.CheckRegistrationSettings(c.Registration, string(c.RegistrationToken)); {
	case err != nil && c.Registration == provider.RegistrationToken:
		problems = append(problems, fmt.Errorf("%w: set --registration-token, %s or %s_FILE",
			err, EnvName("registration-token"), EnvName("registration-token")))
	case err != nil:
		problems = append(problems, err)
	}
	return errors.Join(problems...)
}

// validateTLS checks that the TLS files come as a pair that loads, and that
// an issuer served over TLS is https.
func (c *Config) validateTLS() []error {
	switch {
	case c.TLSCertFile == "" && c.TLSKeyFile == "":
		return nil
	case c.TLSCertFile == "" || c.TLSKeyFile == "":
		return []error{errors.New("tls-cert-file and tls-key-file must be set together: set both for HTTPS, or neither for plain HTTP")}
	}
	var problems []error
	if _, err := c.TLSCertificate(); err != nil {
		problems = append(problems, err)
	}
	if c.Issuer != "" && !strings.HasPrefix(c.Issuer, "https://") {
		problems = append(problems, fmt.Errorf("issuer %q must be https when tls-cert-file is set", c.Issuer))
	}
	return problems
}

// TLSCertificate loads the certificate and key of TLSCertFile and
// TLSKeyFile.
func (c *Config) TLSCertificate() (tls.Certificate, error) {
	certificate, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate %s and key %s failed to load (both must be PEM files, and the key must belong to the certificate): %w",
			c.TLSCertFile, c.TLSKeyFile, err)
	}
	return certificate, nil
}

// Level parses LogLevel.
func (c *Config) Level() (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return level, fmt.Errorf("log-level %q is not one of debug, info, warn, error", c.LogLevel)
	}
	return level, nil
}

// ProviderConfig returns the provider's settings.
func (c *Config) ProviderConfig(logger *slog.Logger) provider.Config {
	return provider.Config{
		Issuer:                    c.Issuer,
		SystemSecret:              []byte(c.SystemSecret),
		AccessTokenLifetime:       c.AccessTokenLifetime,
		RefreshTokenLifetime:      c.RefreshTokenLifetime,
		IDTokenLifetime:           c.IDTokenLifetime,
		AuthorizationCodeLifetime: c.AuthorizationCodeLifetime,
		LoginSessionLifetime:      c.LoginSessionLifetime,
		LoginSessionIdleTimeout:   c.LoginSessionIdleTimeout,
		AccessTokenAlgorithm:      c.AccessTokenAlgorithm,
		MFALockout:                c.MFALockout,
		Logger:                    logger,
		Registration:              c.Registration,
		RegistrationToken:         string(c.RegistrationToken),
		AllowPrivateFetches:       c.AllowPrivateFetches || c.Dev,
	}
}
