package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/backchannel"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// clientJSON is the client as the CLI prints it.
type clientJSON struct {
	ClientID                 string   `json:"client_id"`
	ClientSecret             string   `json:"client_secret,omitempty"`
	Name                     string   `json:"client_name"`
	RedirectURIs             []string `json:"redirect_uris"`
	PostLogoutRedirectURIs   []string `json:"post_logout_redirect_uris"`
	GrantTypes               []string `json:"grant_types"`
	ResponseTypes            []string `json:"response_types"`
	Scope                    string   `json:"scope"`
	Public                   bool     `json:"public"`
	FirstParty               bool     `json:"first_party"`
	AllowPlainPKCE           bool     `json:"allow_plain_pkce"`
	TokenEndpointAuthMethod  string   `json:"token_endpoint_auth_method"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg"`
	BackchannelLogoutURI     string   `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired is nil, and left out, for a client
	// without a back-channel logout URI.
	BackchannelLogoutSessionRequired *bool     `json:"backchannel_logout_session_required,omitempty"`
	CreatedAt                        time.Time `json:"created_at"`
}

func toClientJSON(c *storage.Client, secret string) clientJSON {
	var sessionRequired *bool
	if c.BackchannelLogoutURI != "" {
		sessionRequired = &c.BackchannelLogoutSessionRequired
	}
	return clientJSON{
		ClientID:                         c.ID,
		ClientSecret:                     secret,
		Name:                             c.Name,
		RedirectURIs:                     c.RedirectURIs,
		PostLogoutRedirectURIs:           c.PostLogoutRedirectURIs,
		GrantTypes:                       c.GrantTypes,
		ResponseTypes:                    c.ResponseTypes,
		Scope:                            strings.Join(c.Scopes, " "),
		Public:                           c.Public,
		FirstParty:                       c.FirstParty,
		AllowPlainPKCE:                   c.AllowPlainPKCE,
		TokenEndpointAuthMethod:          c.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg:         c.IDTokenSignedResponseAlg,
		BackchannelLogoutURI:             c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: sessionRequired,
		CreatedAt:                        c.CreatedAt,
	}
}

func newClientsCommand(a *app) *cobra.Command {
	clients := &cobra.Command{
		Use:   "clients",
		Short: "Register and manage OAuth 2.0 clients",
	}
	clients.AddCommand(newClientsCreateCommand(a), newClientsListCommand(a), newClientsGetCommand(a), newClientsDeleteCommand(a))
	return clients
}

type clientOptions struct {
	name                   string
	redirectURIs           []string
	postLogoutRedirectURIs []string
	grantTypes             []string
	scope                  string
	public                 bool
	firstParty             bool
	allowPlainPKCE         bool
	authMethod             string
	idTokenAlg             string
	backchannelLogoutURI   string
	// backchannelLogoutSessionRequired defaults to true. It is stored only
	// with a back-channel logout URI.
	backchannelLogoutSessionRequired bool
	// backchannelLogoutSessionRequiredSet records that the flag was given,
	// so that giving it without a URI can be rejected.
	backchannelLogoutSessionRequiredSet bool
	output                              string
}

func newClientsCreateCommand(a *app) *cobra.Command {
	var opts clientOptions
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Register a client and print it, with its secret shown this once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.backchannelLogoutSessionRequiredSet = cmd.Flags().Changed("backchannel-logout-session-required")
			client, err := opts.client()
			if err != nil {
				return err
			}
			if err := a.requireSecret(); err != nil {
				return err
			}

			secret := ""
			if !client.Public {
				hasher, err := provider.NewSecretHasher([]byte(a.cfg.SystemSecret))
				if err != nil {
					return err
				}
				secret = provider.GenerateClientSecret()
				client.SecretHash, _ = hasher.Hash(cmd.Context(), []byte(secret))
			}

			db, err := a.openDatabase(cmd.Context(), a.cfg.Dev)
			if err != nil {
				return err
			}
			defer db.Close()
			store, err := a.auditedStore(db)
			if err != nil {
				return err
			}
			err = store.InTx(cmd.Context(), func(ctx context.Context) error {
				if err := store.CreateClient(ctx, client); err != nil {
					return err
				}
				return recordCLIEvent(ctx, store, "client.created", client.ID, map[string]any{"name": client.Name})
			})
			if err != nil {
				return fmt.Errorf("create client: %w", err)
			}
			return printClient(cmd.OutOrStdout(), opts.output, client, secret)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.name, "name", "", "client name shown on the consent page (required)")
	flags.StringArrayVar(&opts.redirectURIs, "redirect-uri", nil, "allowed redirect URI, exact match (repeatable)")
	flags.StringArrayVar(&opts.postLogoutRedirectURIs, "post-logout-redirect-uri", nil, "allowed post-logout redirect URI (repeatable)")
	flags.StringArrayVar(&opts.grantTypes, "grant-type", nil, "allowed grant type: authorization_code, refresh_token or client_credentials (repeatable; default authorization_code and refresh_token)")
	flags.StringVar(&opts.scope, "scope", "openid profile email offline_access", "space-separated scopes the client may request")
	flags.BoolVar(&opts.public, "public", false, "public client (no secret; PKCE with S256 required)")
	flags.BoolVar(&opts.firstParty, "first-party", false, "skip the consent page for this client")
	flags.BoolVar(&opts.allowPlainPKCE, "allow-plain-pkce", false, "let this confidential client use the PKCE method 'plain'")
	flags.StringVar(&opts.authMethod, "token-endpoint-auth-method", "", "client_secret_basic (default), client_secret_post, or none for public clients")
	flags.StringVar(&opts.idTokenAlg, "id-token-signed-response-alg", provider.AlgRS256, "ID token signing algorithm: RS256 or ES256")
	flags.StringVar(&opts.backchannelLogoutURI, "backchannel-logout-uri", "", "URL that receives this client's logout tokens (OpenID Connect Back-Channel Logout): https, or http on a loopback host; may have a query, not a fragment")
	flags.BoolVar(&opts.backchannelLogoutSessionRequired, "backchannel-logout-session-required", true, "require the sid claim in this client's logout tokens; needs --backchannel-logout-uri")
	flags.StringVar(&opts.output, "output", "text", "output format: text or json")
	return cmd
}

var knownGrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}

// client validates the options and builds the client they describe.
func (o *clientOptions) client() (*storage.Client, error) {
	var problems []error
	if strings.TrimSpace(o.name) == "" {
		problems = append(problems, errors.New("--name is required"))
	}

	grantTypes := o.grantTypes
	if len(grantTypes) == 0 {
		grantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, grantType := range grantTypes {
		if !slices.Contains(knownGrantTypes, grantType) {
			problems = append(problems, fmt.Errorf("unknown grant type %q: use one of %s", grantType, strings.Join(knownGrantTypes, ", ")))
		}
	}
	usesRedirect := slices.Contains(grantTypes, "authorization_code")
	if usesRedirect && len(o.redirectURIs) == 0 {
		problems = append(problems, errors.New("--redirect-uri is required for the authorization_code grant"))
	}
	if o.public && slices.Contains(grantTypes, "client_credentials") {
		problems = append(problems, errors.New("a public client cannot use client_credentials"))
	}
	if o.public && o.allowPlainPKCE {
		problems = append(problems, errors.New("public clients must use PKCE with S256; --allow-plain-pkce is for confidential clients"))
	}

	redirectURIs, err := normalizeURIs(o.redirectURIs, "--redirect-uri")
	problems = append(problems, err)
	postLogoutURIs, err := normalizeURIs(o.postLogoutRedirectURIs, "--post-logout-redirect-uri")
	problems = append(problems, err)

	backchannelLogoutURI, err := normalizeBackchannelLogoutURI(o.backchannelLogoutURI)
	problems = append(problems, err)
	if backchannelLogoutURI != "" && !usesRedirect {
		problems = append(problems, errors.New("--backchannel-logout-uri needs the authorization_code grant, because only a client that signs people in gets logout tokens"))
	}
	if o.backchannelLogoutURI == "" && o.backchannelLogoutSessionRequiredSet {
		problems = append(problems, errors.New("--backchannel-logout-session-required needs --backchannel-logout-uri"))
	}

	authMethod := o.authMethod
	switch {
	case o.public && authMethod == "":
		authMethod = "none"
	case authMethod == "":
		authMethod = "client_secret_basic"
	}
	switch {
	case o.public && authMethod != "none":
		problems = append(problems, errors.New("a public client's token endpoint auth method is none"))
	case !o.public && authMethod != "client_secret_basic" && authMethod != "client_secret_post":
		problems = append(problems, fmt.Errorf("token endpoint auth method %q: use client_secret_basic or client_secret_post", authMethod))
	}
	if o.idTokenAlg != provider.AlgRS256 && o.idTokenAlg != provider.AlgES256 {
		problems = append(problems, fmt.Errorf("ID token algorithm %q: use RS256 or ES256", o.idTokenAlg))
	}
	if o.output != "text" && o.output != "json" {
		problems = append(problems, fmt.Errorf("output %q: use text or json", o.output))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}

	responseTypes := []string{}
	if usesRedirect {
		responseTypes = []string{"code"}
	}
	return &storage.Client{
		ID:                               uuid.NewString(),
		Name:                             strings.TrimSpace(o.name),
		RedirectURIs:                     redirectURIs,
		PostLogoutRedirectURIs:           postLogoutURIs,
		GrantTypes:                       grantTypes,
		ResponseTypes:                    responseTypes,
		Scopes:                           strings.Fields(o.scope),
		Public:                           o.public,
		FirstParty:                       o.firstParty,
		AllowPlainPKCE:                   o.allowPlainPKCE,
		TokenEndpointAuthMethod:          authMethod,
		IDTokenSignedResponseAlg:         o.idTokenAlg,
		BackchannelLogoutURI:             backchannelLogoutURI,
		BackchannelLogoutSessionRequired: backchannelLogoutURI != "" && o.backchannelLogoutSessionRequired,
	}, nil
}

// normalizeURIs checks that each URI is absolute and fragment-free, and
// stores it in the canonical form that fosite compares against.
func normalizeURIs(uris []string, flag string) ([]string, error) {
	normalized := make([]string, 0, len(uris))
	var problems []error
	for _, raw := range uris {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
			problems = append(problems, fmt.Errorf("%s %q is not an absolute URI", flag, raw))
			continue
		}
		if u.Fragment != "" || strings.Contains(raw, "#") {
			problems = append(problems, fmt.Errorf("%s %q must not contain a fragment", flag, raw))
			continue
		}
		normalized = append(normalized, u.String())
	}
	return normalized, errors.Join(problems...)
}

// normalizeBackchannelLogoutURI checks a back-channel logout URI and returns
// it in canonical form, or "" when raw is empty. OpenID Connect Back-Channel
// Logout 1.0 §2.2 requires an absolute URI without a fragment and allows a
// query. Logout tokens reach it in a server-to-server POST (§2.5), so
// Latchkey also requires https, or http on a loopback host.
func normalizeBackchannelLogoutURI(raw string) (string, error) {
	const flag = "--backchannel-logout-uri"
	if raw == "" {
		return "", nil
	}
	normalized, err := normalizeURIs([]string{raw}, flag)
	if err != nil {
		return "", err
	}

	u, _ := url.Parse(normalized[0])
	if u.Host == "" {
		return "", fmt.Errorf("%s %q has no host: use an https URL such as https://app.example.com/logout", flag, raw)
	}
	switch u.Scheme {
	case "https":
		return normalized[0], nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return normalized[0], nil
		}
		return "", fmt.Errorf("%s %q uses http on a non-loopback host: use https", flag, raw)
	default:
		return "", fmt.Errorf("%s %q must use https", flag, raw)
	}
}

// isLoopbackHost reports whether host is localhost or a loopback IP
// address. Names under .localhost are left out: a resolver may send them to
// DNS.
func isLoopbackHost(host string) bool {
	return backchannel.IsLoopbackHost(host)
}

func printClient(w io.Writer, output string, client *storage.Client, secret string) error {
	if output == "json" {
		encoder := json.NewEncoder(w)
		encoder.SetIndent("", "  ")
		return encoder.Encode(toClientJSON(client, secret))
	}
	table := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(table, "client_id:\t%s\n", client.ID)
	if secret != "" {
		fmt.Fprintf(table, "client_secret:\t%s   (shown only now)\n", secret)
	}
	fmt.Fprintf(table, "name:\t%s\n", client.Name)
	fmt.Fprintf(table, "redirect_uris:\t%s\n", strings.Join(client.RedirectURIs, " "))
	fmt.Fprintf(table, "grant_types:\t%s\n", strings.Join(client.GrantTypes, " "))
	fmt.Fprintf(table, "scope:\t%s\n", strings.Join(client.Scopes, " "))
	fmt.Fprintf(table, "public:\t%t\n", client.Public)
	fmt.Fprintf(table, "first_party:\t%t\n", client.FirstParty)
	fmt.Fprintf(table, "auth_method:\t%s\n", client.TokenEndpointAuthMethod)
	if client.BackchannelLogoutURI != "" {
		fmt.Fprintf(table, "backchannel_logout_uri:\t%s\n", client.BackchannelLogoutURI)
		fmt.Fprintf(table, "backchannel_logout_session_required:\t%t\n", client.BackchannelLogoutSessionRequired)
	}
	return table.Flush()
}

func newClientsListCommand(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List registered clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.openDatabase(cmd.Context(), a.cfg.Dev)
			if err != nil {
				return err
			}
			defer db.Close()
			clients, err := storage.NewStore(db).ListClients(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				list := make([]clientJSON, 0, len(clients))
				for _, c := range clients {
					list = append(list, toClientJSON(c, ""))
				}
				encoder := json.NewEncoder(cmd.OutOrStdout())
				encoder.SetIndent("", "  ")
				return encoder.Encode(list)
			}
			table := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(table, "CLIENT ID\tNAME\tPUBLIC\tGRANT TYPES\tBACKCHANNEL LOGOUT URI\tSESSION REQUIRED")
			for _, c := range clients {
				logoutURI, sessionRequired := "-", "-"
				if c.BackchannelLogoutURI != "" {
					logoutURI = c.BackchannelLogoutURI
					sessionRequired = strconv.FormatBool(c.BackchannelLogoutSessionRequired)
				}
				fmt.Fprintf(table, "%s\t%s\t%t\t%s\t%s\t%s\n", c.ID, c.Name, c.Public, strings.Join(c.GrantTypes, ","), logoutURI, sessionRequired)
			}
			return table.Flush()
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "output format: text or json")
	return cmd
}

func newClientsGetCommand(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get CLIENT_ID",
		Short: "Print one client (never its secret)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.openDatabase(cmd.Context(), a.cfg.Dev)
			if err != nil {
				return err
			}
			defer db.Close()
			client, err := storage.NewStore(db).GetClientByID(cmd.Context(), args[0])
			if errors.Is(err, fosite.ErrNotFound) {
				return fmt.Errorf("client %q not found", args[0])
			}
			if err != nil {
				return err
			}
			return printClient(cmd.OutOrStdout(), output, client, "")
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "output format: text or json")
	return cmd
}

func newClientsDeleteCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete CLIENT_ID",
		Short: "Delete a client with its consents and tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.openDatabase(cmd.Context(), a.cfg.Dev)
			if err != nil {
				return err
			}
			defer db.Close()
			store, err := a.auditedStore(db)
			if err != nil {
				return err
			}
			err = store.InTx(cmd.Context(), func(ctx context.Context) error {
				if err := store.DeleteClient(ctx, args[0]); err != nil {
					return err
				}
				return recordCLIEvent(ctx, store, "client.deleted", args[0], nil)
			})
			if errors.Is(err, fosite.ErrNotFound) {
				return fmt.Errorf("client %q not found", args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted client %s\n", args[0])
			return nil
		},
	}
}
