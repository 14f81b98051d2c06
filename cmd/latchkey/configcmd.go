package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/storage"
)

func newConfigCommand(a *app) *cobra.Command {
	configCmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	configCmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the settings from flags, environment and --config, and print every problem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			sessions := "process memory"
			if a.cfg.RedisURL != "" {
				sessions = "Redis"
			}
			database := "SQLite"
			if storage.IsPostgres(string(a.cfg.DatabaseURL)) {
				database = "PostgreSQL"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "configuration is valid: issuer %s, database %s, login sessions in %s\n",
				a.cfg.Issuer, database, sessions)
			return nil
		},
	})
	return configCmd
}
