package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newMigrateCommand(a *app) *cobra.Command {
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Manage the database schema",
	}
	migrate.AddCommand(
		&cobra.Command{
			Use:   "up",
			Short: "Apply every pending migration",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				db, err := a.connectDatabase(cmd.Context())
				if err != nil {
					return err
				}
				defer db.Close()
				status, err := db.Migrate(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "schema at version %d\n", status.Current)
				return nil
			},
		},
		&cobra.Command{
			Use:   "status",
			Short: "Print the applied and the newest schema version",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				db, err := a.connectDatabase(cmd.Context())
				if err != nil {
					return err
				}
				defer db.Close()
				status, err := db.SchemaStatus(cmd.Context())
				if err != nil {
					return err
				}
				state := "up to date"
				if !status.UpToDate() {
					state = "pending migrations: run 'latchkey migrate up'"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "applied version %d, latest version %d (%s)\n", status.Current, status.Latest, state)
				return nil
			},
		},
	)
	return migrate
}
