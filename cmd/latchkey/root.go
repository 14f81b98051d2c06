package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// app carries the configuration and the dependencies a command opens.
type app struct {
	cfg    config.Config
	logger *slog.Logger
	// generatedSecret is the path of a development secret created by this run.
	generatedSecret string
}

func newRootCommand() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "latchkey",
		Short:         "Latchkey is an OpenID Connect provider",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.load(cmd)
		},
	}
	config.BindFlags(root.PersistentFlags(), &a.cfg)

	root.AddCommand(
		newServeCommand(a),
		newMigrateCommand(a),
		newClientsCommand(a),
		newUsersCommand(a),
		newKeysCommand(a),
		newJanitorCommand(a),
		newConfigCommand(a),
		newHealthCommand(a),
		newAuditCommand(a),
		newConformanceCommand(a),
	)
	return root
}

// load applies the environment, resolves derived settings and sets up
// logging. Validation is left to the commands, which need different parts.
func (a *app) load(cmd *cobra.Command) error {
	if err := config.Load(cmd.Flags()); err != nil {
		return err
	}
	generated, err := a.cfg.Resolve()
	if err != nil {
		return err
	}
	a.generatedSecret = generated

	// An invalid level is reported by Validate with every other problem.
	level, _ := a.cfg.Level()
	a.logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(a.logger)
	return nil
}

// requireSecret fails unless a valid system secret is configured.
func (a *app) requireSecret() error {
	if a.cfg.SystemSecret == "" {
		return fmt.Errorf("missing system secret: set %s or %s, or pass --dev for a generated one",
			config.EnvName("system-secret"), config.EnvName("system-secret-file"))
	}
	if len(a.cfg.SystemSecret) < provider.MinSystemSecretLength {
		return fmt.Errorf("system secret is %d bytes; at least %d are required", len(a.cfg.SystemSecret), provider.MinSystemSecretLength)
	}
	return nil
}

// Start-up retry: a database or Redis that is not reachable yet (a
// container starting beside Latchkey, say) is retried with exponential
// backoff up to startupTimeout.
const (
	startupTimeout  = 2 * time.Minute
	firstRetryDelay = 500 * time.Millisecond
	maxRetryDelay   = 10 * time.Second
)

// retry calls connect until it succeeds, fails with an error other than
// storage.ErrUnavailable, or startupTimeout passes, logging each failure.
func retry[T any](ctx context.Context, logger *slog.Logger, what string, connect func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(startupTimeout)
	delay := firstRetryDelay
	for attempt := 1; ; attempt++ {
		value, err := connect(ctx)
		if err == nil || !errors.Is(err, storage.ErrUnavailable) || time.Now().Add(delay).After(deadline) {
			return value, err
		}
		logger.Warn("dependency unreachable, retrying", "dependency", what, "attempt", attempt, "retry_in", delay, "error", err)
		select {
		case <-ctx.Done():
			return value, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// connectDatabase connects to the configured database, retrying while it
// is unreachable.
func (a *app) connectDatabase(ctx context.Context) (*storage.Database, error) {
	return retry(ctx, a.logger, "database", func(ctx context.Context) (*storage.Database, error) {
		return storage.Open(ctx, string(a.cfg.DatabaseURL))
	})
}

// openDatabase connects to the configured database and checks its schema.
// With migrate, pending migrations are applied first.
func (a *app) openDatabase(ctx context.Context, migrate bool) (*storage.Database, error) {
	db, err := a.connectDatabase(ctx)
	if err != nil {
		return nil, err
	}
	if migrate {
		if _, err := db.Migrate(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}

	status, err := db.SchemaStatus(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if !status.UpToDate() {
		db.Close()
		return nil, fmt.Errorf("database schema is at version %d but this binary needs %d: run 'latchkey migrate up' or pass --migrate",
			status.Current, status.Latest)
	}
	return db, nil
}

// sessionStore is the login-session store that serve uses and closes.
type sessionStore interface {
	provider.SessionStore
	DeleteByUser(ctx context.Context, userID string) error
	Stats(ctx context.Context) (*storage.SessionStats, error)
	Close() error
}

// openSessions returns the Redis session store when a Redis URL is set,
// retrying while Redis is unreachable, and the in-memory store otherwise.
func (a *app) openSessions(ctx context.Context) (sessionStore, error) {
	if a.cfg.RedisURL == "" {
		return memorySessions{storage.NewMemorySessionStore()}, nil
	}
	client, err := retry(ctx, a.logger, "redis", func(ctx context.Context) (*redis.Client, error) {
		return storage.OpenRedis(ctx, string(a.cfg.RedisURL))
	})
	if err != nil {
		return nil, err
	}
	return redisSessions{storage.NewRedisSessionStore(client, a.cfg.RedisKeyPrefix), client}, nil
}

type memorySessions struct{ *storage.MemorySessionStore }

func (memorySessions) Close() error { return nil }

type redisSessions struct {
	*storage.RedisSessionStore
	client *redis.Client
}

func (r redisSessions) Close() error { return r.client.Close() }

// openKeys loads the signing keys. With create it also creates the
// missing active ones, as the provider needs them to sign.
func (a *app) openKeys(ctx context.Context, store *storage.Store, create bool) (*provider.KeySet, error) {
	keys, err := provider.NewKeySet(store, []byte(a.cfg.SystemSecret))
	if err != nil {
		return nil, err
	}
	if !create {
		return keys, keys.Load(ctx)
	}
	providerConfig := a.cfg.ProviderConfig(a.logger)
	created, err := keys.EnsureActive(ctx, providerConfig.KeyOverlap(), provider.AlgRS256, provider.AlgES256)
	if err != nil {
		return nil, err
	}
	for _, algorithm := range created {
		a.logger.Info("created signing key", "algorithm", algorithm)
	}
	return keys, nil
}

// auditPurpose names the key of the audit log's hash chain.
const auditPurpose = "latchkey audit chain v1"

// auditedStore returns a store whose audit log is keyed with a key derived
// from the system secret, for commands that write or verify the log.
func (a *app) auditedStore(db *storage.Database) (*storage.Store, error) {
	if err := a.requireSecret(); err != nil {
		return nil, fmt.Errorf("%w (the audit log is keyed with it)", err)
	}
	key, err := provider.DeriveKey([]byte(a.cfg.SystemSecret), auditPurpose)
	if err != nil {
		return nil, err
	}
	store := storage.NewStore(db)
	store.SetAuditKey(key)
	return store, nil
}
