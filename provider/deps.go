package provider

import (
	"context"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"

	"github.com/latchkey/latchkey/storage"
)

// Store is the durable state the provider needs: fosite's storage
// interfaces plus users, clients and consents.
type Store interface {
	fosite.Storage
	oauth2.CoreStorage
	oauth2.TokenRevocationStorage
	openid.OpenIDConnectRequestStorage
	pkce.PKCERequestStorage
	fositestorage.Transactional

	GetUser(ctx context.Context, id string) (*storage.User, error)
	GetUserByUsername(ctx context.Context, username string) (*storage.User, error)
	GetClientByID(ctx context.Context, id string) (*storage.Client, error)
	CreateClient(ctx context.Context, client *storage.Client) error
	UpdateClient(ctx context.Context, client *storage.Client) error
	DeleteClient(ctx context.Context, id string) error
	GetConsent(ctx context.Context, userID, clientID string) (*storage.Consent, error)
	SaveConsent(ctx context.Context, consent *storage.Consent) error
	UserRoles(ctx context.Context, userID string) ([]*storage.Role, error)
	AppendAuditEvent(ctx context.Context, event *storage.AuditEvent) error
	RevokeSessionTokens(ctx context.Context, sessionID string) error

	GetMFA(ctx context.Context, userID string) (*storage.MFA, error)
	AcceptTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	UseBackupCode(ctx context.Context, userID string, hash []byte) (bool, error)
	LockMFA(ctx context.Context, userID string, until time.Time) error
	CreateMFAChallenge(ctx context.Context, id, userID string, expiresAt time.Time) error
	GetMFAChallenge(ctx context.Context, id string) (userID string, failures int, err error)
	RecordMFAChallengeFailure(ctx context.Context, id string) (failures int, err error)
	ReserveMFACheck(ctx context.Context, userID string, limit int, now time.Time) (int, error)
	ResetMFAChecks(ctx context.Context, userID string) error
	ReleaseMFACheck(ctx context.Context, userID string) error
	DeleteMFAChallenge(ctx context.Context, id string) error
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	Ready(ctx context.Context) error
}

// SessionStore keeps login sessions.
type SessionStore interface {
	Create(ctx context.Context, session *storage.LoginSession) error
	Get(ctx context.Context, id string) (*storage.LoginSession, error)
	Touch(ctx context.Context, id string) error
	AddClient(ctx context.Context, id, clientID string) error
	Elevate(ctx context.Context, id string, amr []string, authTime time.Time) error
	ListByUser(ctx context.Context, userID string) ([]*storage.LoginSession, error)
	Delete(ctx context.Context, id string) error
}

var (
	_ Store        = (*storage.Store)(nil)
	_ SessionStore = (*storage.MemorySessionStore)(nil)
	_ SessionStore = (*storage.RedisSessionStore)(nil)
)
