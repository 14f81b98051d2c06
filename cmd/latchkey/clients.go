package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/spf13/cobra"

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
	BackchannelLogoutSessionRequired *bool           `json:"backchannel_logout_session_required,omitempty"`
	FrontchannelLogoutURI            string          `json:"frontchannel_logout_uri,omitempty"`
	JWKS                             json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                          string          `json:"jwks_uri,omitempty"`
	RequestURIs                      []string        `json:"request_uris,omitempty"`
	UserinfoSignedResponseAlg        string          `json:"userinfo_signed_response_alg,omitempty"`
	RequestObjectSigningAlg          string          `json:"request_object_signing_alg,omitempty"`
	// Dynamic marks a client that registered itself at the registration
	// endpoint.
	Dynamic   bool      `json:"dynamic,omitempty"`
	CreatedAt time.Time `json:"created_at"`
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
		FrontchannelLogoutURI:            c.Metadata.FrontchannelLogoutURI,
		JWKS:                             c.Metadata.JWKS,
		JWKSURI:                          c.Metadata.JWKSURI,
		RequestURIs:                      c.Metadata.RequestURIs,
		UserinfoSignedResponseAlg:        c.Metadata.UserinfoSignedResponseAlg,
		RequestObjectSigningAlg:          c.Metadata.RequestObjectSigningAlg,
		Dynamic:                          c.Metadata.Dynamic,
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

	responseTypes         []string
	jwksFile              string
	jwksURI               string
	requestURIs           []string
	frontchannelLogoutURI string
	userinfoAlg           string
	requestObjectAlg      string
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

			secrets, err := provider.NewClientSecrets([]byte(a.cfg.SystemSecret))
			if err != nil {
				return err
			}
			secret, err := secrets.Issue(cmd.Context(), client)
			if err != nil {
				return err
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
	flags.StringVar(&opts.authMethod, "token-endpoint-auth-method", "", "client_secret_basic (default), client_secret_post, client_secret_jwt, private_key_jwt (needs --jwks-file or --jwks-uri), or none for public clients")
	flags.StringVar(&opts.idTokenAlg, "id-token-signed-response-alg", provider.AlgRS256, "ID token signing algorithm: RS256 or ES256")
	flags.StringVar(&opts.backchannelLogoutURI, "backchannel-logout-uri", "", "URL that receives this client's logout tokens (OpenID Connect Back-Channel Logout): https, or http on a loopback host; may have a query, not a fragment")
	flags.BoolVar(&opts.backchannelLogoutSessionRequired, "backchannel-logout-session-required", true, "require the sid claim in this client's logout tokens; needs --backchannel-logout-uri")
	flags.StringArrayVar(&opts.responseTypes, "response-type", nil, "allowed response type, such as code or 'code id_token' (repeatable; default code with the authorization_code grant)")
	flags.StringVar(&opts.jwksFile, "jwks-file", "", "file holding the client's public keys as a JSON Web Key Set, for private_key_jwt and signed request objects")
	flags.StringVar(&opts.jwksURI, "jwks-uri", "", "https URL of the client's public keys, instead of --jwks-file")
	flags.StringArrayVar(&opts.requestURIs, "request-uri", nil, "request_uri the client may send request objects from (repeatable)")
	flags.StringVar(&opts.frontchannelLogoutURI, "frontchannel-logout-uri", "", "URL loaded in a hidden frame when a person signs out (OpenID Connect Front-Channel Logout); same scheme, host and port as a redirect URI")
	flags.StringVar(&opts.userinfoAlg, "userinfo-signed-response-alg", "", "sign userinfo responses as a JWT with RS256 or ES256 (default: plain JSON)")
	flags.StringVar(&opts.requestObjectAlg, "request-object-signing-alg", "", "the only algorithm request objects may use: none, RS256 or ES256 (default: any)")
	flags.StringVar(&opts.output, "output", "text", "output format: text or json")
	return cmd
}

// client validates the options and builds the client they describe. The
// metadata rules are the registration endpoint's (provider.ClientRegistration),
// except that any scope may be given.
func (o *clientOptions) client() (*storage.Client, error) {
	var problems []error
	if strings.TrimSpace(o.name) == "" {
		problems = append(problems, errors.New("--name is required"))
	}
	grantTypes := o.grantTypes
	if len(grantTypes) == 0 {
		grantTypes = []string{"authorization_code", "refresh_token"}
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
	case !o.public && authMethod == "none":
		problems = append(problems, errors.New("token endpoint auth method none is for public clients: add --public"))
	}
	if o.public && o.allowPlainPKCE {
		problems = append(problems, errors.New("public clients must use PKCE with S256; --allow-plain-pkce is for confidential clients"))
	}
	if o.backchannelLogoutURI == "" && o.backchannelLogoutSessionRequiredSet {
		problems = append(problems, errors.New("--backchannel-logout-session-required needs --backchannel-logout-uri"))
	}
	var jwks json.RawMessage
	if o.jwksFile != "" {
		data, err := os.ReadFile(o.jwksFile)
		if err != nil {
			problems = append(problems, fmt.Errorf("--jwks-file: %w", err))
		}
		jwks = data
	}
	if o.output != "text" && o.output != "json" {
		problems = append(problems, fmt.Errorf("output %q: use text or json", o.output))
	}

	registration := provider.ClientRegistration{
		RedirectURIs:                     o.redirectURIs,
		PostLogoutRedirectURIs:           o.postLogoutRedirectURIs,
		GrantTypes:                       grantTypes,
		ResponseTypes:                    o.responseTypes,
		ClientName:                       o.name,
		Scope:                            o.scope,
		TokenEndpointAuthMethod:          authMethod,
		IDTokenSignedResponseAlg:         o.idTokenAlg,
		UserinfoSignedResponseAlg:        o.userinfoAlg,
		RequestObjectSigningAlg:          o.requestObjectAlg,
		JWKS:                             jwks,
		JWKSURI:                          o.jwksURI,
		RequestURIs:                      o.requestURIs,
		BackchannelLogoutURI:             o.backchannelLogoutURI,
		BackchannelLogoutSessionRequired: &o.backchannelLogoutSessionRequired,
		FrontchannelLogoutURI:            o.frontchannelLogoutURI,
	}
	client, err := registration.NewClient(nil)
	var invalid *provider.InvalidMetadataError
	if errors.As(err, &invalid) {
		for _, problem := range invalid.Problems {
			problems = append(problems, fmt.Errorf("%s %s", flagOfMetadata(problem.Field), problem.Reason))
		}
	} else if err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}

	client.ID = uuid.NewString()
	client.FirstParty = o.firstParty
	client.AllowPlainPKCE = o.allowPlainPKCE
	return client, nil
}

// flagOfMetadata returns the flag that sets a client metadata member, so
// that problems name what the user typed.
func flagOfMetadata(field string) string {
	flags := map[string]string{
		"client_name":                  "--name",
		"redirect_uris":                "--redirect-uri",
		"post_logout_redirect_uris":    "--post-logout-redirect-uri",
		"grant_types":                  "--grant-type",
		"response_types":               "--response-type",
		"scope":                        "--scope",
		"token_endpoint_auth_method":   "--token-endpoint-auth-method",
		"id_token_signed_response_alg": "--id-token-signed-response-alg",
		"userinfo_signed_response_alg": "--userinfo-signed-response-alg",
		"request_object_signing_alg":   "--request-object-signing-alg",
		"jwks":                         "--jwks-file",
		"jwks_uri":                     "--jwks-uri",
		"request_uris":                 "--request-uri",
		"backchannel_logout_uri":       "--backchannel-logout-uri",
		"frontchannel_logout_uri":      "--frontchannel-logout-uri",
	}
	if flag, ok := flags[field]; ok {
		return flag
	}
	return field
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
	if client.Metadata.JWKSURI != "" {
		fmt.Fprintf(table, "jwks_uri:\t%s\n", client.Metadata.JWKSURI)
	}
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
