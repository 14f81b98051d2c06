// Package logout ends login sessions everywhere at once. Deleting the
// session from the session store stops its SSO cookie and the sid of its
// access tokens. Revoking its grants in the database stops its refresh
// tokens and codes. A logout token goes to every client of the session that
// registered a back-channel logout URI.
package logout

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/backchannel"
	"github.com/latchkey/latchkey/storage"
)

// ActionSessionEnded is the audit action for an ended login session.
const ActionSessionEnded = "session.ended"

// Sessions is the login session store.
type Sessions interface {
	Get(ctx context.Context, id string) (*storage.LoginSession, error)
	ListByUser(ctx context.Context, userID string) ([]*storage.LoginSession, error)
	Delete(ctx context.Context, id string) error
}

// Store is the durable state an ended session changes.
type Store interface {
	RevokeSessionTokens(ctx context.Context, sessionID string) error
	AppendAuditEvent(ctx context.Context, event *storage.AuditEvent) error
	GetClientByID(ctx context.Context, id string) (*storage.Client, error)
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// Notifier delivers back-channel logout tokens; *backchannel.Notifier is
// one.
type Notifier interface {
	Notify(ctx context.Context, subject, sessionID string, targets []backchannel.Target)
}

var _ Notifier = (*backchannel.Notifier)(nil)

// Ender ends login sessions.
type Ender struct {
	sessions Sessions
	store    Store
	notifier Notifier
	logger   *slog.Logger
}

// NewEnder returns an Ender. With a nil notifier, no client receives a
// logout token.
func NewEnder(sessions Sessions, store Store, notifier Notifier, logger *slog.Logger) *Ender {
	if logger == nil {
		logger = slog.Default()
	}
	return &Ender{sessions: sessions, store: store, notifier: notifier, logger: logger}
}

// endTimeout bounds the work of ending one session, which goes on when
// the request that asked for it is cancelled.
const endTimeout = 10 * time.Second

// End ends one session. event describes who ends it and why: its actor,
// request details and a "reason" in Details. End sets the subject, action
// and session id.
//
// The session's tokens are revoked before the session is deleted, so that a
// failure leaves it in place for the caller to retry. After the delete they
// are revoked again, in the transaction that records the event, to catch a
// code issued in between. The provider also rejects a code whose session
// ended while it was issued.
func (e *Ender) End(ctx context.Context, session *storage.LoginSession, event *storage.AuditEvent) error {
	// A person who closes the connection must not leave a session half
	// ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()

	if err := e.store.RevokeSessionTokens(ctx, session.ID); err != nil {
		return err
	}
	// Clients recorded since the caller read the session receive a token too.
	clients := slices.Clone(session.Clients)
	if latest, err := e.sessions.Get(ctx, session.ID); err == nil {
		for _, clientID := range latest.Clients {
			if !slices.Contains(clients, clientID) {
				clients = append(clients, clientID)
			}
		}
	}
	if err := e.sessions.Delete(ctx, session.ID); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return err
	}

	recorded := *event
	recorded.Subject = session.UserID
	recorded.Action = ActionSessionEnded
	if recorded.Outcome == "" {
		recorded.Outcome = storage.OutcomeSuccess
	}
	recorded.Details = maps.Clone(event.Details)
	if recorded.Details == nil {
		recorded.Details = map[string]any{}
	}
	recorded.Details["sid"] = session.ID
	err := e.store.InTx(ctx, func(ctx context.Context) error {
		if err := e.store.RevokeSessionTokens(ctx, session.ID); err != nil {
			return err
		}
		return e.store.AppendAuditEvent(ctx, &recorded)
	})
	if err != nil {
		// The session is gone and its earlier tokens are revoked; the event
		// and a code issued during the delete may be missing.
		e.logger.ErrorContext(ctx, "recording an ended session failed", "sid", session.ID, "user_id", session.UserID, "error", err)
		return err
	}

	e.notify(ctx, session.UserID, session.ID, clients)
	return nil
}

// EndAllOf ends every live session of a user except keepSessionID, which
// may be empty.
func (e *Ender) EndAllOf(ctx context.Context, userID, keepSessionID string, event *storage.AuditEvent) error {
	sessions, err := e.sessions.ListByUser(ctx, userID)
	if err != nil {
		return err
	}
	for _, session := range sessions {
		if session.ID == keepSessionID {
			continue
		}
		if err := e.End(ctx, session, event); err != nil {
			return err
		}
	}
	return nil
}

// notify queues a logout token for every client of the session that
// registered a back-channel logout URI. A client that cannot be read is
// logged and skipped: the session has ended either way.
func (e *Ender) notify(ctx context.Context, userID, sessionID string, clients []string) {
	if e.notifier == nil || len(clients) == 0 {
		return
	}
	var targets []backchannel.Target
	for _, clientID := range clients {
		client, err := e.store.GetClientByID(ctx, clientID)
		if err != nil {
			if !errors.Is(err, fosite.ErrNotFound) {
				e.logger.ErrorContext(ctx, "back-channel logout skipped: client unreadable", "client_id", clientID, "error", err)
			}
			continue
		}
		if client.BackchannelLogoutURI == "" {
			continue
		}
		targets = append(targets, backchannel.Target{
			ClientID:  client.ID,
			URI:       client.BackchannelLogoutURI,
			Algorithm: client.IDTokenSignedResponseAlg,
		})
	}
	if len(targets) > 0 {
		e.notifier.Notify(ctx, userID, sessionID, targets)
	}
}
