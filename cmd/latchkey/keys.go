package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

func newKeysCommand(a *app) *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "List and rotate token signing keys",
	}
	keys.AddCommand(newKeysListCommand(a), newKeysRotateCommand(a))
	return keys
}

func newKeysListCommand(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the published signing keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.requireSecret(); err != nil {
				return err
			}
			db, err := a.openDatabase(cmd.Context(), a.cfg.Dev)
			if err != nil {
				return err
			}
			defer db.Close()
			keys, err := provider.NewKeySet(storage.NewStore(db), []byte(a.cfg.SystemSecret))
			if err != nil {
				return err
			}
			if err := keys.Load(cmd.Context()); err != nil {
				return err
			}

			infos := keys.Keys()
			sort.Slice(infos, func(i, j int) bool {
				if infos[i].Algorithm != infos[j].Algorithm {
					return infos[i].Algorithm < infos[j].Algorithm
				}
				return infos[i].Active && !infos[j].Active
			})
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(infos)
			}
			table := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(table, "KID\tALGORITHM\tSTATE")
			for _, info := range infos {
				state := "retired, still published"
				if info.Active {
					state = "active"
				}
				fmt.Fprintf(table, "%s\t%s\t%s\n", info.KID, info.Algorithm, state)
			}
			return table.Flush()
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "output format: text or json")
	return cmd
}

func newKeysRotateCommand(a *app) *cobra.Command {
	var algorithms []string
	var overlap time.Duration
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new active signing key; the old one stays published until its tokens expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.requireSecret(); err != nil {
				return err
			}
			db, err := a.openDatabase(cmd.Context(), a.cfg.Dev)
			if err != nil {
				return err
			}
			defer db.Close()
			keys, err := provider.NewKeySet(storage.NewStore(db), []byte(a.cfg.SystemSecret))
			if err != nil {
				return err
			}
			if err := keys.Load(cmd.Context()); err != nil {
				return err
			}

			if overlap <= 0 {
				providerConfig := a.cfg.ProviderConfig(a.logger)
				overlap = providerConfig.KeyOverlap()
			}
			for _, algorithm := range algorithms {
				kid, err := keys.Rotate(cmd.Context(), algorithm, overlap)
				if err != nil {
					return err
				}
				store, err := a.auditedStore(db)
				if err != nil {
					return err
				}
				if err := recordCLIEvent(cmd.Context(), store, "signing_key.rotated", kid,
					map[string]any{"algorithm": algorithm, "overlap": overlap.String()}); err != nil {
					return fmt.Errorf("key %s rotated, but writing the audit event failed: %w", kid, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "new %s key %s, published now and signing in %s; the previous one stays published for %s\n",
					algorithm, kid, provider.DefaultKeyActivationDelay, overlap)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&algorithms, "algorithm", []string{provider.AlgRS256, provider.AlgES256}, "algorithms to rotate: RS256, ES256 or both")
	cmd.Flags().DurationVar(&overlap, "overlap", 0, "how long the replaced key stays published; at least the longest access or ID token lifetime "+
		"the running servers use (default: from this command's lifetime settings, plus the new key's two-minute activation delay and one minute)")
	return cmd
}
