package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newHealthCommand checks a running service's readiness endpoint. Container
// images run it as their health check, so that they need no shell or curl.
func newHealthCommand(a *app) *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 if a running provider reports ready, 1 otherwise",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if target == "" {
				target = readinessURL(a.cfg.ProviderAddr)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("readiness check of %s failed: %w", target, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s returned status %d: %s", target, resp.StatusCode, body)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", body)
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "readiness URL to check (default: /health/ready on --provider-addr)")
	return cmd
}

// readinessURL returns the readiness endpoint of a service listening on
// addr, reached over loopback when it listens on every interface.
func readinessURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://127.0.0.1:3001/health/ready"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/health/ready"
}
