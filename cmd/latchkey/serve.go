package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/ory/fosite"
	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/userapi"
)

// Services serve can run.
const (
	serviceProvider = "provider"
	serviceUserAPI  = "userapi"
)

func newServeCommand(a *app) *cobra.Command {
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run Latchkey's services",
	}
	serve.AddCommand(
		&cobra.Command{
			Use:   "all",
			Short: "Run every service: the provider and the user API",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.serve(cmd.Context(), serviceProvider, serviceUserAPI)
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
			handler, err = a.providerHandler(ctx, store, sessions)
			addr = a.cfg.ProviderAddr
		case serviceUserAPI:
			// The user API can see login sessions when they live in Redis or
			// in this process's memory, beside the provider.
			sharedSessions := a.cfg.RedisURL != "" || slices.Contains(services, serviceProvider)
			handler, err = a.userAPIHandler(ctx, store, sessions, sharedSessions)
			addr = a.cfg.UserAPIAddr
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
		go func() { errs <- l.server.Serve(l.listener) }()
		a.logger.Info("listening", "service", service, "addr", listener.Addr().String(), "issuer", a.cfg.Issuer, "dev", a.cfg.Dev)
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
	a.logger.Info("stopped")
	return nil
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

// providerHandler builds the provider: signing keys, dev data and fosite.
func (a *app) providerHandler(ctx context.Context, store *storage.Store, sessions sessionStore) (http.Handler, error) {
	keys, created, err := a.openKeys(ctx, store)
	if err != nil {
		return nil, err
	}
	for _, algorithm := range created {
		a.logger.Info("created signing key", "algorithm", algorithm)
	}
	if a.generatedSecret != "" {
		a.logger.Info("generated development system secret", "path", a.generatedSecret)
	}
	if a.cfg.Dev {
		if err := a.bootstrapDev(ctx, store); err != nil {
			return nil, err
		}
	}
	p, err := provider.New(a.cfg.ProviderConfig(a.logger), store, sessions, keys)
	if err != nil {
		return nil, err
	}
	go keys.RunReloader(ctx, keyReloadInterval, a.logger)
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

// cursorPurpose names the key that signs the user API's pagination cursors.
const cursorPurpose = "latchkey userapi cursor v1"

// userAPIHandler builds the user API with a verifier of the provider's
// access tokens.
func (a *app) userAPIHandler(ctx context.Context, store *storage.Store, sessions sessionStore, sharedSessions bool) (http.Handler, error) {
	audience := a.cfg.UserAPIAudience
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
	if sharedSessions {
		verifierConfig.SessionCheck = sessionAlive(sessions)
	} else {
		a.logger.Warn("the user API cannot see login sessions kept in another process's memory, so it accepts access tokens of ended sessions until they expire; set LATCHKEY_REDIS_URL")
	}
	verifier, err := bearer.New(keysCtx, verifierConfig)
	if err != nil {
		return nil, fmt.Errorf("user API token verifier: %w", err)
	}
	cursorKey, err := provider.DeriveKey([]byte(a.cfg.SystemSecret), cursorPurpose)
	if err != nil {
		return nil, err
	}
	api, err := userapi.New(userapi.Config{CursorKey: cursorKey, Logger: a.logger}, store, sessions, verifier)
	if err != nil {
		return nil, err
	}
	return api.Handler(), nil
}
