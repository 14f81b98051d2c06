package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/storage"
)

func newAuditCommand(a *app) *cobra.Command {
	audit := &cobra.Command{
		Use:   "audit",
		Short: "Check and prune the audit log",
	}
	audit.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Walk the audit log's hash chain and report the first broken link",
		Args:  cobra.NoArgs,
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
			result, err := store.VerifyAuditChain(cmd.Context())
			if err != nil {
				return err
			}
			if result.BrokenSeq != 0 {
				return fmt.Errorf("audit log broken at event %d (%s); %d events checked. "+
					"Someone changed or removed rows in audit_events: compare event %d with a backup",
					result.BrokenSeq, result.Reason, result.Checked, result.BrokenSeq)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit log intact: %d events verified\n", result.Checked)
			return nil
		},
	})

	var olderThan time.Duration
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Delete audit events older than --older-than; the rest stays verifiable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if olderThan <= 0 {
				return fmt.Errorf("--older-than must be positive, such as 2160h for 90 days")
			}
			db, err := a.openDatabase(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			store, err := a.auditedStore(db)
			if err != nil {
				return err
			}
			deleted, err := store.PruneAuditEvents(cmd.Context(), time.Now().Add(-olderThan), 0)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d audit events deleted\n", deleted)
			return nil
		},
	}
	prune.Flags().DurationVar(&olderThan, "older-than", 0, "delete events older than this, such as 2160h")
	audit.AddCommand(prune)
	return audit
}

// recordCLIEvent writes an audit event for a change made with the CLI. The
// actor is the system, with the operating-system user in the details.
func recordCLIEvent(ctx context.Context, store *storage.Store, action, subject string, details map[string]any) error {
	return store.AppendAuditEvent(ctx, cliEvent(action, subject, details))
}

// cliEvent returns an audit event whose actor is this command, run by the
// operating system user at this host.
func cliEvent(action, subject string, details map[string]any) *storage.AuditEvent {
	if details == nil {
		details = map[string]any{}
	}
	details["via"] = "cli"
	if current, err := user.Current(); err == nil {
		details["os_user"] = current.Username
	}
	host, _ := os.Hostname()
	return &storage.AuditEvent{
		ActorType: storage.ActorSystem,
		ActorID:   "latchkey-cli@" + host,
		Subject:   subject,
		Action:    action,
		Outcome:   storage.OutcomeSuccess,
		Details:   details,
	}
}
