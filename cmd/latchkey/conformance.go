package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/conformance"
)

func newConformanceCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "Check an OpenID provider against the OpenID Foundation's OP conformance plans",
	}
	cmd.AddCommand(newConformanceRunCommand(a))
	return cmd
}

// conformanceFlags are the flags of `conformance run` that do not map
// one to one onto conformance.Options.
type conformanceFlags struct {
	passwordFile  string
	clientsFile   string
	rotateCommand string
	reportPath    string
	strict        bool
}

func newConformanceRunCommand(a *app) *cobra.Command {
	var opts conformance.Options
	var flags conformanceFlags
	cmd := &cobra.Command{
		Use:   "run --issuer URL --plan PLAN [flags]",
		Short: "Run conformance plans against the provider at --issuer",
		Long: `It runs the OpenID Foundation's OP certification plans as a black box,
through HTTP and headless Chromium, against any OpenID provider: ` + strings.Join(conformance.PlanNames(), ", ") + `, or all.
It prints a table of module results, the extra findings outside certification, and
the counts, writes a JSON report, and exits with status 1 when a module FAILED or was INTERRUPTED.

Clients are registered dynamically when discovery has a registration_endpoint
(--registration-token sends an initial access token). Otherwise pass --clients, a
JSON file with client, client2 and client_secret_post, each with client_id and
client_secret, registered with the redirect URI http://127.0.0.1:PORT/callback of a
fixed --listen port (and /post_logout_redirect, /backchannel_logout and
/frontchannel_logout for the logout plans).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runConformance(cmd, opts, flags)
		},
	}

	f := cmd.Flags()
	f.StringSliceVar(&opts.Plans, "plan", nil, "plan to run, repeatable or comma-separated: "+strings.Join(conformance.PlanNames(), ", ")+", or all")
	f.StringSliceVar(&opts.Modules, "module", nil, "run only these modules of the plans, such as oidcc-server (repeatable)")
	f.StringVar(&opts.ResponseType, "response-type", "code", "response_type of the dynamic plan")
	f.StringVar(&opts.Username, "username", "", "username of the test user")
	f.StringVar(&opts.Password, "password", "", "password of the test user; prefer --password-file, since arguments are visible to other users")
	f.StringVar(&flags.passwordFile, "password-file", "", "file holding the test user's password")
	f.StringVar(&opts.LoginHint, "login-hint", "", "login_hint of oidcc-login-hint (default: buffy@ and the issuer's host)")
	defaults := conformance.DefaultSelectors()
	f.StringVar(&opts.Selectors.Username, "username-selector", defaults.Username, "CSS selector of the login form's username input")
	f.StringVar(&opts.Selectors.Password, "password-selector", defaults.Password, "CSS selector of the login form's password input")
	f.StringVar(&opts.Selectors.Submit, "submit-selector", defaults.Submit, "CSS selector of the login form's submit button")
	f.StringVar(&opts.Selectors.Consent, "consent-selector", defaults.Consent, "CSS selector of the consent page's button that grants access")
	f.StringVar(&opts.Selectors.Logout, "logout-selector", defaults.Logout, "CSS selector of the logout confirmation page's button that logs out")
	f.StringVar(&opts.CAFile, "ca-file", "", "PEM file of certificates to trust for the provider")
	f.BoolVar(&opts.InsecureSkipVerify, "insecure-skip-verify", false, "trust any certificate of the provider; only for a test provider")
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:0", "address of the callback server; static clients need a fixed port")
	f.BoolVar(&opts.CallbackTLS, "callback-tls", false, "serve the callbacks over https with a generated self-signed certificate")
	f.StringVar(&flags.clientsFile, "clients", "", "JSON file of static clients, instead of dynamic registration")
	f.StringVar(&flags.rotateCommand, "rotate-keys-command", "", "shell command that rotates the provider's signing keys, for oidcc-server-rotate-keys")
	f.DurationVar(&opts.JWKSRefreshDelay, "jwks-refresh-delay", 60*time.Second, "how long oidcc-refresh-token-rp-key-rotation waits for the provider to fetch the client's new key, 1s to 60s")
	f.DurationVar(&opts.NoRedirectWait, "no-redirect-wait", 3*time.Second, "how long a module that expects an error page waits for a redirect that must not come")
	f.IntVar(&opts.Parallel, "parallel", 8, "number of modules run at once")
	f.StringVar(&opts.ChromiumPath, "chromium", "", "Chromium binary (default: chromium in PATH)")
	f.BoolVar(&opts.DisableBrowser, "no-browser", false, "run without Chromium; the modules that need it are SKIPPED")
	f.StringVar(&opts.ArtifactsDir, "artifacts", "conformance-artifacts", "folder for the screenshots of the modules marked REVIEW")
	f.StringVar(&flags.reportPath, "report", "conformance-report.json", "file for the JSON report")
	f.BoolVar(&flags.strict, "strict", false, "exit with status 1 also when an extra check outside certification found something")
	_ = cmd.MarkFlagRequired("plan")
	return cmd
}

func (a *app) runConformance(cmd *cobra.Command, opts conformance.Options, flags conformanceFlags) error {
	opts.Issuer = a.cfg.Issuer
	opts.RegistrationToken = string(a.cfg.RegistrationToken)
	opts.Logger = a.logger
	opts.BrowserIgnoreCertificateErrors = opts.CAFile != "" || opts.InsecureSkipVerify
	if flags.passwordFile != "" {
		data, err := os.ReadFile(flags.passwordFile)
		if err != nil {
			return fmt.Errorf("read password file: %w", err)
		}
		opts.Password = strings.TrimRight(string(data), "\r\n")
	}
	if flags.clientsFile != "" {
		clients, err := conformance.LoadStaticClients(flags.clientsFile)
		if err != nil {
			return err
		}
		opts.Clients = clients
	}
	if flags.rotateCommand != "" {
		opts.RotateKeys = shellHook(flags.rotateCommand)
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := conformance.Run(ctx, opts)
	if err != nil {
		return err
	}
	if err := report.WriteText(cmd.OutOrStdout()); err != nil {
		return err
	}
	if err := report.WriteJSONFile(flags.reportPath); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	switch {
	case report.Failed():
		return fmt.Errorf("%d conformance modules FAILED; the JSON report is %s", report.Counts.Failed, flags.reportPath)
	case report.Counts.Interrupted > 0:
		return fmt.Errorf("the run was cancelled and %d conformance modules were INTERRUPTED; the JSON report is %s", report.Counts.Interrupted, flags.reportPath)
	case flags.strict && report.Counts.Extras > 0:
		return fmt.Errorf("%d extra findings outside certification, and --strict is set; the JSON report is %s", report.Counts.Extras, flags.reportPath)
	}
	return nil
}

// shellHook returns a hook that runs command with sh -c and fails with the
// end of its output when it exits non-zero.
func shellHook(command string) func(context.Context) error {
	return func(ctx context.Context) error {
		output, err := exec.CommandContext(ctx, "sh", "-c", command).CombinedOutput()
		if err == nil {
			return nil
		}
		text := strings.TrimSpace(string(output))
		if len(text) > 500 {
			text = "..." + text[len(text)-500:]
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("%q exited with status %d: %s", command, exit.ExitCode(), text)
		}
		return fmt.Errorf("run %q: %w", command, err)
	}
}
