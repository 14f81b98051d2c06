package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/storage"
)

func newJanitorCommand(a *app) *cobra.Command {
	var batchSize int
	cmd := &cobra.Command{
		Use:   "janitor",
		Short: "Delete expired codes, tokens and retired signing keys once",
		Long: "Delete expired authorization codes, tokens and client assertion ids, and signing keys\n" +
			"whose publication window has ended, in batches so that large tables stay usable.\n" +
			"serve does the same every --janitor-interval.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.openDatabase(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			store, err := a.auditedStore(db)
			if err != nil {
				return err
			}
			deleted, err := store.DeleteExpired(cmd.Context(), time.Now(), batchSize)
			if err != nil {
				return err
			}
			var total int64
			for table, count := range deleted {
				total += count
				if count > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %d deleted\n", table, count)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d expired rows deleted\n", total)
			return nil
		},
	}
	cmd.Flags().IntVar(&batchSize, "batch-size", storage.DefaultCleanupBatch, "rows deleted per statement")
	return cmd
}

// runJanitor deletes expired rows every interval until ctx ends, and audit
// events older than auditRetention when it is positive.
func runJanitor(ctx context.Context, store *storage.Store, interval, auditRetention time.Duration, logger *slog.Logger) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		deleted, err := store.DeleteExpired(ctx, time.Now(), storage.DefaultCleanupBatch)
		if err != nil {
			if ctx.Err() == nil {
				logger.Error("cleanup of expired rows failed", "error", err)
			}
			continue
		}
		var total int64
		for _, count := range deleted {
			total += count
		}
		logger.Info("deleted expired rows", "count", total)

		if auditRetention > 0 {
			pruned, err := store.PruneAuditEvents(ctx, time.Now().Add(-auditRetention), storage.DefaultCleanupBatch)
			if err != nil && ctx.Err() == nil {
				logger.Error("pruning of old audit events failed", "error", err)
				continue
			}
			logger.Info("deleted old audit events", "count", pruned)
		}
	}
}
