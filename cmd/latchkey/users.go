package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latchkey/latchkey/backchannel"
	"github.com/latchkey/latchkey/logout"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// minPasswordLength follows NIST SP 800-63B §5.1.1.2 for passwords chosen by
// the user.
const minPasswordLength = 8

func newUsersCommand(a *app) *cobra.Command {
	users := &cobra.Command{
		Use:   "users",
		Short: "Create users and set their passwords",
	}
	users.AddCommand(newUsersCreateCommand(a), newUsersSetPasswordCommand(a))
	return users
}

// readPassword reads one line from r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if len(password) < minPasswordLength {
		return "", fmt.Errorf("password must be at least %d characters", minPasswordLength)
	}
	return password, nil
}

func newUsersCreateCommand(a *app) *cobra.Command {
	var username, email, name, givenName, familyName, output string
	var passwordStdin, emailVerified bool
	var roles []string
	var claims claimFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var problems []error
			switch normalized := storage.NormalizeUsername(username); {
			case normalized == "":
				problems = append(problems, errors.New("--username is required"))
			case !storage.ValidUsername(normalized):
				problems = append(problems, fmt.Errorf("--username %q: use 1 to 64 of a-z, 0-9 and . _ @ -, starting with a letter or digit", username))
			}
			if email == "" {
				problems = append(problems, errors.New("--email is required"))
			} else if _, err := mail.ParseAddress(email); err != nil {
				problems = append(problems, fmt.Errorf("--email %q is not an email address", email))
			}
			if !passwordStdin {
				problems = append(problems, errors.New("--password-stdin is required: pass the password on standard input"))
			}
			var user storage.User
			problems = append(problems, claims.apply(&user, time.Now())...)
			if err := errors.Join(problems...); err != nil {
				return err
			}
			password, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}

			db, err := a.openDatabase(cmd.Context(), a.cfg.Dev)
			if err != nil {
				return err
			}
			defer db.Close()
			user.ID = uuid.NewString()
			user.Username = username
			user.Email = email
			user.EmailVerified = emailVerified
			user.PasswordHash = provider.HashPassword(password)
			user.Name = name
			user.GivenName = givenName
			user.FamilyName = familyName
			if len(roles) == 0 {
				roles = []string{storage.RoleUser}
			}
			store, err := a.auditedStore(db)
			if err != nil {
				return err
			}
			err = store.InTx(cmd.Context(), func(ctx context.Context) error {
				if err := store.CreateUser(ctx, &user); err != nil {
					return err
				}
				for _, name := range roles {
					role, err := store.GetRole(ctx, name)
					if errors.Is(err, fosite.ErrNotFound) {
						return fmt.Errorf("role %q not found; the roles are: %s", name, roleNames(ctx, store))
					}
					if err != nil {
						return err
					}
					if err := store.AssignRole(ctx, user.ID, role.ID); err != nil {
						return err
					}
				}
				return recordCLIEvent(ctx, store, "user.created", user.ID, map[string]any{"username": user.Username, "roles": roles})
			})
			if errors.Is(err, storage.ErrConflict) {
				return fmt.Errorf("username %q is taken", storage.NormalizeUsername(username))
			}
			if err != nil {
				return err
			}

			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{
					"id": user.ID, "username": user.Username, "email": user.Email,
				})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created user %s (id %s)\n", user.Username, user.ID)
			return nil
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&username, "username", "", "login name, stored lower-case (required)")
	flags.StringVar(&email, "email", "", "email address (required)")
	flags.BoolVar(&emailVerified, "email-verified", false, "mark the email address as verified")
	flags.StringVar(&name, "name", "", "full name")
	flags.StringVar(&givenName, "given-name", "", "given name")
	flags.StringVar(&familyName, "family-name", "", "family name")
	claims.register(flags)
	flags.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	flags.StringArrayVar(&roles, "role", nil, "role to assign, such as admin (repeatable; default: user)")
	flags.StringVar(&output, "output", "text", "output format: text or json")
	return cmd
}

// claimFlags are the optional standard claims (OpenID Connect Core §5.1)
// that `users create` sets.
type claimFlags struct {
	middleName, nickname, profileURL, website, gender, birthdate string
	picture, locale, zoneinfo, phoneNumber                       string
	phoneNumberVerified                                          bool
	address                                                      storage.Address
}

func (f *claimFlags) register(flags *pflag.FlagSet) {
	flags.StringVar(&f.middleName, "middle-name", "", "middle name")
	flags.StringVar(&f.nickname, "nickname", "", "casual name")
	flags.StringVar(&f.profileURL, "profile-url", "", "URL of the user's profile page (the profile claim), https or http")
	flags.StringVar(&f.website, "website", "", "URL of the user's web page or blog, https or http")
	flags.StringVar(&f.gender, "gender", "", "gender, such as female or male; other values are allowed")
	flags.StringVar(&f.birthdate, "birthdate", "", "birthdate as YYYY-MM-DD, 0000-MM-DD to withhold the year, or YYYY")
	flags.StringVar(&f.picture, "picture", "", "URL of the user's picture, https or http")
	flags.StringVar(&f.locale, "locale", "", "BCP 47 language tag, such as en-US")
	flags.StringVar(&f.zoneinfo, "zoneinfo", "", "IANA time zone, such as Europe/Paris")
	flags.StringVar(&f.phoneNumber, "phone-number", "", "telephone number in E.164 form, such as +14155550100")
	flags.BoolVar(&f.phoneNumberVerified, "phone-number-verified", false, "mark the phone number as verified")
	flags.StringVar(&f.address.Formatted, "address-formatted", "", "full postal address for display, which may span several lines")
	flags.StringVar(&f.address.StreetAddress, "street-address", "", "street address of the postal address")
	flags.StringVar(&f.address.Locality, "locality", "", "city or locality of the postal address")
	flags.StringVar(&f.address.Region, "region", "", "state, province or region of the postal address")
	flags.StringVar(&f.address.PostalCode, "postal-code", "", "postal code")
	flags.StringVar(&f.address.Country, "country", "", "country of the postal address")
}

// apply checks each claim with the checks the user API runs and sets the
// valid ones on user. It returns one error for each invalid flag.
func (f *claimFlags) apply(user *storage.User, now time.Time) []error {
	var problems []error
	invalid := func(flag, value string, err error) {
		problems = append(problems, fmt.Errorf("--%s %q: %w", flag, value, err))
	}

	for _, text := range []struct {
		flag, value string
		target      *string
	}{
		{"middle-name", f.middleName, &user.MiddleName},
		{"nickname", f.nickname, &user.Nickname},
	} {
		cleaned, err := storage.CleanClaimText(text.value, storage.MaxNameLength)
		if err != nil {
			invalid(text.flag, text.value, err)
			continue
		}
		*text.target = cleaned
	}

	for _, link := range []struct {
		flag, value string
		target      *string
	}{
		{"profile-url", f.profileURL, &user.Profile},
		{"website", f.website, &user.Website},
		{"picture", f.picture, &user.Picture},
	} {
		if err := storage.CheckWebURL(link.value); err != nil {
			invalid(link.flag, link.value, err)
			continue
		}
		*link.target = link.value
	}

	for _, checked := range []struct {
		flag, value string
		check       func(string) error
		target      *string
	}{
		{"locale", f.locale, storage.CheckLocale, &user.Locale},
		{"zoneinfo", f.zoneinfo, storage.CheckZoneinfo, &user.Zoneinfo},
		{"phone-number", f.phoneNumber, storage.CheckPhoneNumber, &user.PhoneNumber},
	} {
		if err := checked.check(checked.value); err != nil {
			invalid(checked.flag, checked.value, err)
			continue
		}
		*checked.target = checked.value
	}
	user.PhoneNumberVerified = f.phoneNumberVerified && user.PhoneNumber != ""

	if gender, err := storage.CleanGender(f.gender); err != nil {
		invalid("gender", f.gender, err)
	} else {
		user.Gender = gender
	}
	if err := storage.CheckBirthdate(f.birthdate, now); err != nil {
		invalid("birthdate", f.birthdate, err)
	} else {
		user.Birthdate = f.birthdate
	}

	for _, member := range []struct {
		flag, name, value string
		target            *string
	}{
		{"address-formatted", "formatted", f.address.Formatted, &user.Address.Formatted},
		{"street-address", "street_address", f.address.StreetAddress, &user.Address.StreetAddress},
		{"locality", "locality", f.address.Locality, &user.Address.Locality},
		{"region", "region", f.address.Region, &user.Address.Region},
		{"postal-code", "postal_code", f.address.PostalCode, &user.Address.PostalCode},
		{"country", "country", f.address.Country, &user.Address.Country},
	} {
		cleaned, err := storage.CleanAddressMember(member.name, member.value)
		if err != nil {
			invalid(member.flag, member.value, err)
			continue
		}
		*member.target = cleaned
	}
	return problems
}

func newUsersSetPasswordCommand(a *app) *cobra.Command {
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "set-password USERNAME",
		Short: "Replace a user's password",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !passwordStdin {
				return errors.New("--password-stdin is required: pass the password on standard input")
			}
			password, err := readPassword(cmd.InOrStdin())
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
			user, err := store.GetUserByUsername(cmd.Context(), args[0])
			if errors.Is(err, fosite.ErrNotFound) {
				return fmt.Errorf("user %q not found", args[0])
			}
			if err != nil {
				return err
			}
			// A new password ends what the old one let anyone start: the
			// change, the revocation and the audit event commit together.
			hash := provider.HashPassword(password)
			err = store.InTx(cmd.Context(), func(ctx context.Context) error {
				if err := store.SetPasswordHash(ctx, user.ID, hash); err != nil {
					return err
				}
				if err := store.RevokeUserTokens(ctx, user.ID, ""); err != nil {
					return err
				}
				if err := store.DeleteUserMFAChallenges(ctx, user.ID); err != nil {
					return err
				}
				return recordCLIEvent(ctx, store, "user.password_changed", user.ID, nil)
			})
			if err != nil {
				return err
			}
			if a.cfg.RedisURL != "" {
				if err := a.endUserSessions(cmd.Context(), store, user.ID, "password_changed"); err != nil {
					return fmt.Errorf("password changed and tokens revoked, but ending sessions failed: %w", err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password changed for %s; their refresh tokens are revoked\n", user.Username)
			return nil
		},
	}
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the new password from the first line of standard input")
	return cmd
}

// backchannelDrainTimeout bounds how long a CLI command waits for the
// back-channel logouts it queued.
const backchannelDrainTimeout = 30 * time.Second

// endUserSessions ends every login session of a user kept in Redis, as the
// user API does: each ending is audited and reaches the clients' back
// channels before the command exits.
func (a *app) endUserSessions(ctx context.Context, store *storage.Store, userID, reason string) error {
	sessions, err := a.openSessions(ctx)
	if err != nil {
		return err
	}
	defer sessions.Close()
	keys, err := a.openKeys(ctx, store, false)
	if err != nil {
		return err
	}
	notifier, err := backchannel.New(backchannel.Config{Issuer: a.cfg.Issuer, Signer: keys, Logger: a.logger})
	if err != nil {
		return err
	}
	notifierCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	notifier.Start(notifierCtx)

	ender := logout.NewEnder(sessions, store, notifier, a.logger)
	if err := ender.EndAllOf(ctx, userID, "", cliEvent(logout.ActionSessionEnded, userID, map[string]any{"reason": reason})); err != nil {
		return err
	}
	drainCtx, cancel := context.WithTimeout(ctx, backchannelDrainTimeout)
	defer cancel()
	return notifier.Wait(drainCtx)
}

// roleNames lists the existing roles for an error message.
func roleNames(ctx context.Context, store *storage.Store) string {
	roles, err := store.ListRoles(ctx)
	if err != nil {
		return "(unavailable)"
	}
	names := make([]string, 0, len(roles))
	for _, role := range roles {
		names = append(names, role.Name)
	}
	return strings.Join(names, ", ")
}
