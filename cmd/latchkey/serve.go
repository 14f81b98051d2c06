package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

func newServeCommand(a *app) *cobra.Command {
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run Latchkey's services",
	}
	serve.AddCommand(
		&cobra.Command{
			Use:   "all",
			Short: "Run every service (today: the provider)",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, args []string) error { return a.serve(cmd.Context()) },
		},
		&cobra.Command{
			Use:   "provider",
			Short: "Run the OpenID Connect provider",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, args []string) error { return a.serve(cmd.Context()) },
		},
	)
	return serve
}

// keyReloadInterval is how often a running provider picks up keys rotated
// by the CLI or another replica.
const keyReloadInterval = time.Minute

func (a *app) serve(ctx context.Context) error {
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
	store := storage.NewStore(db)

	keys, created, err := a.openKeys(ctx, store)
	if err != nil {
		return err
	}
	for _, algorithm := range created {
		a.logger.Info("created signing key", "algorithm", algorithm)
	}
	if a.generatedSecret != "" {
		a.logger.Info("generated development system secret", "path", a.generatedSecret)
	}
	if a.cfg.Dev {
		if err := a.bootstrapDev(ctx, store); err != nil {
			return err
		}
	}

	sessions, err := a.openSessions(ctx)
	if err != nil {
		return err
	}
	defer sessions.Close()
	if a.cfg.RedisURL == "" {
		a.logger.Warn("login sessions are kept in process memory: a restart signs everyone out and replicas do not share them; set LATCHKEY_REDIS_URL for production")
	}

	p, err := provider.New(a.cfg.ProviderConfig(a.logger), store, sessions, keys)
	if err != nil {
		return err
	}
	go keys.RunReloader(ctx, keyReloadInterval, a.logger)
	if a.cfg.JanitorInterval > 0 {
		go runJanitor(ctx, store, a.cfg.JanitorInterval, a.logger)
	}

	listener, err := net.Listen("tcp", a.cfg.ProviderAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.ProviderAddr, err)
	}
	server := &http.Server{
		Handler:           p.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
	}
	a.logger.Info("provider listening", "addr", listener.Addr().String(), "issuer", a.cfg.Issuer, "dev", a.cfg.Dev)

	errs := make(chan error, 1)
	go func() { errs <- server.Serve(listener) }()

	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}

	a.logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errs; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.logger.Info("stopped")
	return nil
}
