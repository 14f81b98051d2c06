package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

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
	)
	return root
}

// load applies the environment, resolves derived settings and sets up
// logging. Validation is left to the commands, which need different parts.
func (a *app) load(cmd *cobra.Command) error {
	if err := config.ApplyEnvironment(cmd.Flags()); err != nil {
		return err
	}
	generated, err := a.cfg.Resolve()
	if err != nil {
		return err
	}
	a.generatedSecret = generated

	level, err := a.cfg.Level()
	if err != nil {
		return err
	}
	a.logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(a.logger)
	return nil
}

// requireSecret fails unless a valid system secret is configured.
func (a *app) requireSecret() error {
	if a.cfg.SystemSecret == "" {
		return fmt.Errorf("missing system secret: set %s or %s, or pass --dev",
			config.EnvName("system-secret"), config.EnvName("system-secret-file"))
	}
	if len(a.cfg.SystemSecret) < provider.MinSystemSecretLength {
		return fmt.Errorf("system secret is %d bytes; at least %d are required", len(a.cfg.SystemSecret), provider.MinSystemSecretLength)
	}
	return nil
}

// openDatabase connects to the configured database and checks its schema.
// With migrate, or in dev mode, pending migrations are applied first.
func (a *app) openDatabase(ctx context.Context, migrate bool) (*storage.Database, error) {
	db, err := storage.Open(ctx, a.cfg.DatabaseURL)
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

// openKeys loads the signing keys, creating the missing active ones.
func (a *app) openKeys(ctx context.Context, store *storage.Store) (*provider.KeySet, []string, error) {
	keys, err := provider.NewKeySet(store, []byte(a.cfg.SystemSecret))
	if err != nil {
		return nil, nil, err
	}
	created, err := keys.EnsureActive(ctx, provider.AlgRS256, provider.AlgES256)
	if err != nil {
		return nil, nil, err
	}
	return keys, created, nil
}

var errUsage = errors.New("invalid arguments")
