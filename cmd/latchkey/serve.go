package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/ory/fosite"
	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/backchannel"
	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/logout"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/sessionapi"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/userapi"
)

// Services serve can run.
const (
	serviceProvider   = "provider"
	serviceUserAPI    = "userapi"
	serviceSessionAPI = "sessionapi"
)

func newServeCommand(a *app) *cobra.Command {
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run Latchkey's services",
	}
	serve.AddCommand(
		&cobra.Command{
			Use:   "all",
			Short: "Run every service: the provider, the user API and the session API",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.serve(cmd.Context(), serviceProvider, serviceUserAPI, serviceSessionAPI)
			},
		},
		&cobra.Command{
			Use:   "provider",
			Short: "Run the OpenID Connect provider",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, args []string) error { return a.serve(cmd.Context(), serviceProvider) },
		},
		&cobra.Command{
			Use:   "userapi",
			Short: "Run the user API, verifying tokens against the provider at --issuer",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, args []string) error { return a.serve(cmd.Context(), serviceUserAPI) },
		},
		&cobra.Command{
			Use:   "sessionapi",
			Short: "Run the session API, verifying tokens against the provider at --issuer",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, args []string) error { return a.serve(cmd.Context(), serviceSessionAPI) },
		},
	)
	return serve
}

// keyReloadInterval is how often a running provider picks up keys rotated
// by the CLI or another replica.
const keyReloadInterval = time.Minute

// shutdownTimeout bounds how long in-flight requests may take to finish
// after SIGTERM.
const shutdownTimeout = 20 * time.Second

// listening is one service's HTTP server and its listener.
type listening struct {
	name     string
	server   *http.Server
	listener net.Listener
}

func (a *app) serve(ctx context.Context, services ...string) error {
	if err := a.cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	tlsConfig, err := a.serverTLSConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	db, err := a.openDatabase(ctx, a.cfg.Migrate || a.cfg.Dev)
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := a.auditedStore(db)
	if err != nil {
		return err
	}

	sessions, err := a.openSessions(ctx)
	if err != nil {
		return err
	}
	defer sessions.Close()
	if a.cfg.RedisURL == "" {
		a.logger.Warn("login sessions are kept in process memory: a restart signs everyone out and replicas do not share them; set LATCHKEY_REDIS_URL for production")
	}
	// Services outside this process's memory cannot see its sessions.
	sharedSessions := a.cfg.RedisURL != "" || slices.Contains(services, serviceProvider)
	if !sharedSessions && slices.Contains(services, serviceSessionAPI) {
		return errors.New("the session API needs the login sessions: set LATCHKEY_REDIS_URL, or serve it with the provider (serve all)")
	}

	// Only the provider creates signing keys; the APIs load them to sign
	// back-channel logout tokens.
	keys, err := a.openKeys(ctx, store, slices.Contains(services, serviceProvider))
	if err != nil {
		return err
	}
	go keys.RunReloader(ctx, keyReloadInterval, a.logger)
	notifier, err := backchannel.New(backchannel.Config{Issuer: a.cfg.Issuer, Signer: keys, Logger: a.logger})
	if err != nil {
		return err
	}
	// The notifier outlives the signal: logouts queued by the requests that
	// Shutdown lets finish still go out, until Wait below gives up.
	notifierCtx, stopNotifier := context.WithCancel(context.WithoutCancel(ctx))
	defer stopNotifier()
	notifier.Start(notifierCtx)
	ender := logout.NewEnder(sessions, store, notifier, a.logger)

	// Each service starts serving before the next is built: the user API
	// fetches the provider's keys while it starts.
	var running []listening
	errs := make(chan error, len(services))
	defer func() {
		for _, l := range running {
			l.listener.Close()
		}
	}()
	for _, service := range services {
		var handler http.Handler
		var addr string
		switch service {
		case serviceProvider:
			handler, err = a.providerHandler(ctx, store, sessions, keys, ender)
			addr = a.cfg.ProviderAddr
		case serviceUserAPI:
			handler, err = a.userAPIHandler(ctx, store, sessions, ender, sharedSessions)
			addr = a.cfg.UserAPIAddr
		case serviceSessionAPI:
			handler, err = a.sessionAPIHandler(ctx, store, sessions, ender, sharedSessions)
			addr = a.cfg.SessionAPIAddr
		}
		if err != nil {
			return err
		}
		listener, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: listen on %s: %w", service, addr, err)
		}
		l := listening{name: service, listener: listener, server: newHTTPServer(handler)}
		running = append(running, l)
		if tlsConfig != nil {
			l.server.TLSConfig = tlsConfig.Clone()
			go func() { errs <- l.server.ServeTLS(l.listener, "", "") }()
		} else {
			go func() { errs <- l.server.Serve(l.listener) }()
		}
		a.logger.Info("listening", "service", service, "addr", listener.Addr().String(), "tls", tlsConfig != nil, "issuer", a.cfg.Issuer, "dev", a.cfg.Dev)
	}
	if a.cfg.JanitorInterval > 0 {
		go runJanitor(ctx, store, a.cfg.JanitorInterval, a.cfg.AuditRetention, a.logger)
	}

	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}

	a.logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, l := range running {
		if err := l.server.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("%s: shutdown: %w", l.name, err)
		}
	}
	for range running {
		if err := <-errs; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	// Back-channel logouts queued by the last requests get the rest of the
	// shutdown time to go out.
	if err := notifier.Wait(shutdownCtx); err != nil {
		a.logger.Warn("back-channel logouts still queued at shutdown were dropped", "error", err)
	}
	a.logger.Info("stopped")
	return nil
}

// serverTLSConfig returns the TLS settings of every listener, or nil when
// no certificate is configured and serve speaks plain HTTP.
func (a *app) serverTLSConfig() (*tls.Config, error) {
	if a.cfg.TLSCertFile == "" {
		return nil, nil
	}
	certificate, err := a.cfg.TLSCertificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{certificate}}, nil
}

// ownCertificateClient returns an HTTP client that trusts the system's
// roots and the certificates in --tls-cert-file, so that the APIs can fetch
// the provider's keys from an issuer served with a self-signed certificate.
// The file holds this installation's own certificate and the CAs that
// issued it, so no one else gains trust.
func (a *app) ownCertificateClient() (*http.Client, error) {
	data, err := os.ReadFile(a.cfg.TLSCertFile)
	if err != nil {
		return nil, fmt.Errorf("reading the TLS certificate failed: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		certificate, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate %s is invalid: %w", a.cfg.TLSCertFile, err)
		}
		roots.AddCert(certificate)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	return &http.Client{Transport: transport, Timeout: bearer.DefaultHTTPTimeout}, nil
}

func newHTTPServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
	}
}

// providerHandler builds the provider: dev data and fosite.
func (a *app) providerHandler(ctx context.Context, store *storage.Store, sessions sessionStore, keys *provider.KeySet, ender *logout.Ender) (http.Handler, error) {
	if a.generatedSecret != "" {
		a.logger.Info("generated development system secret", "path", a.generatedSecret)
	}
	if a.cfg.Dev {
		if err := a.bootstrapDev(ctx, store); err != nil {
			return nil, err
		}
	}
	cfg := a.cfg.ProviderConfig(a.logger)
	cfg.SessionEnder = ender
	if cfg.Registration == provider.RegistrationOpen {
		a.logger.Warn("dynamic client registration is open: anyone who reaches the provider can register a client")
	}
	p, err := provider.New(cfg, store, sessions, keys)
	if err != nil {
		return nil, err
	}
	return p.Handler(), nil
}

// sessionAlive returns bearer's session check: a token whose login session
// has ended is rejected, and an unreachable session store gives 503.
func sessionAlive(sessions sessionStore) func(ctx context.Context, sid string) error {
	return func(ctx context.Context, sid string) error {
		_, err := sessions.Get(ctx, sid)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, fosite.ErrNotFound):
			return errors.New("the login session of this token has ended")
		default:
			return fmt.Errorf("%w: %v", bearer.ErrUnavailable, err)
		}
	}
}

// verifier builds a resource server's verifier of the provider's access
// tokens. With sessionCheck it rejects tokens whose login session ended;
// that needs the sessions to be shared with the provider.
func (a *app) verifier(ctx context.Context, service, audience string, sessions sessionStore, sessionCheck, sharedSessions bool) (*bearer.Verifier, error) {
	if audience == "" {
		audience = a.cfg.Issuer
	}
	// New waits this long at most for the provider's keys; without them it
	// keeps trying as requests come in.
	keysCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	verifierConfig := bearer.Config{
		Issuer:            a.cfg.Issuer,
		Audience:          audience,
		JWKSURL:           a.cfg.JWKSURL,
		AllowInsecureHTTP: a.cfg.AllowInsecureJWKS,
		Logger:            a.logger,
	}
	if a.cfg.TLSCertFile != "" {
		client, err := a.ownCertificateClient()
		if err != nil {
			return nil, err
		}
		verifierConfig.HTTPClient = client
	}
	switch {
	case !sessionCheck:
		a.logger.Warn("the session check is off: access tokens of ended login sessions are accepted until they expire", "service", service)
	case !sharedSessions:
		a.logger.Warn("login sessions live in another process's memory, so access tokens of ended sessions are accepted until they expire; set LATCHKEY_REDIS_URL", "service", service)
	default:
		verifierConfig.SessionCheck = sessionAlive(sessions)
	}
	verifier, err := bearer.New(keysCtx, verifierConfig)
	if err != nil {
		return nil, fmt.Errorf("%s token verifier: %w", service, err)
	}
	return verifier, nil
}

// cursorPurpose names the key that signs the user API's pagination cursors.
const cursorPurpose = "latchkey userapi cursor v1"

// userAPIHandler builds the user API.
func (a *app) userAPIHandler(ctx context.Context, store *storage.Store, sessions sessionStore, ender *logout.Ender, sharedSessions bool) (http.Handler, error) {
	verifier, err := a.verifier(ctx, serviceUserAPI, a.cfg.UserAPIAudience, sessions, a.cfg.UserAPISessionCheck, sharedSessions)
	if err != nil {
		return nil, err
	}
	cursorKey, err := provider.DeriveKey([]byte(a.cfg.SystemSecret), cursorPurpose)
	if err != nil {
		return nil, err
	}
	mfaCodec, err := provider.NewMFACodec([]byte(a.cfg.SystemSecret))
	if err != nil {
		return nil, err
	}
	api, err := userapi.New(userapi.Config{CursorKey: cursorKey, Logger: a.logger, SessionEnder: ender, MFACodec: mfaCodec}, store, sessions, verifier)
	if err != nil {
		return nil, err
	}
	return api.Handler(), nil
}

// sessionAPIHandler builds the session API.
func (a *app) sessionAPIHandler(ctx context.Context, store *storage.Store, sessions sessionStore, ender *logout.Ender, sharedSessions bool) (http.Handler, error) {
	verifier, err := a.verifier(ctx, serviceSessionAPI, a.cfg.SessionAPIAudience, sessions, a.cfg.SessionAPISessionCheck, sharedSessions)
	if err != nil {
		return nil, err
	}
	return sessionapi.New(store, sessions, ender, verifier, a.logger).Handler(), nil
}
