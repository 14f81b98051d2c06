package userapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/httpapi"
	"github.com/latchkey/latchkey/logout"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// Scopes an access token needs for the user API.
const (
	// ScopeAccount grants a person's own account: /v1/me and below. It is
	// not the OpenID Connect "profile" scope, which lets any app read
	// profile claims: changing the profile or password is a separate grant
	// that the consent page names.
	ScopeAccount = "account"
	// ScopeAdmin grants the admin routes, which also need a permission.
	ScopeAdmin = "admin"
)

// Store is the durable state the user API reads and changes.
type Store interface {
	GetUser(ctx context.Context, id string) (*storage.User, error)
	CreateUser(ctx context.Context, user *storage.User) error
	UpdateUser(ctx context.Context, user *storage.User) error
	GetUserForUpdate(ctx context.Context, id string) (*storage.User, error)
	VerifiedEmailTaken(ctx context.Context, email, excludeID string) (bool, error)
	SetUserDisabled(ctx context.Context, userID string, disabled bool) error
	DeleteUser(ctx context.Context, id string) error
	ListUsers(ctx context.Context, search, after string, limit int) ([]*storage.User, error)
	SetPasswordHash(ctx context.Context, userID, hash string) error
	RevokeUserTokens(ctx context.Context, userID, keepSessionID string) error
	RevokeSessionTokens(ctx context.Context, sessionID string) error
	GetClientByID(ctx context.Context, id string) (*storage.Client, error)

	CreateRole(ctx context.Context, role *storage.Role) error
	UpdateRole(ctx context.Context, role *storage.Role) error
	DeleteRole(ctx context.Context, id string) error
	GetRole(ctx context.Context, idOrName string) (*storage.Role, error)
	ListRoles(ctx context.Context) ([]*storage.Role, error)
	AssignRole(ctx context.Context, userID, roleID string) error
	RemoveRole(ctx context.Context, userID, roleID string) error
	UserRoles(ctx context.Context, userID string) ([]*storage.Role, error)
	UserPermissions(ctx context.Context, userID string) ([]string, error)
	RoleHolderPermissions(ctx context.Context, roleID string) ([]string, error)

	AppendAuditEvent(ctx context.Context, event *storage.AuditEvent) error
	ListAuditEvents(ctx context.Context, filter storage.AuditFilter) ([]*storage.AuditEvent, error)

	GetMFA(ctx context.Context, userID string) (*storage.MFA, error)
	SaveTOTPEnrollment(ctx context.Context, userID string, sealedSecret []byte) error
	ConfirmTOTP(ctx context.Context, userID string, step int64, backupCodeHashes [][]byte) error
	ReplaceBackupCodes(ctx context.Context, userID string, hashes [][]byte) error
	DeleteMFA(ctx context.Context, userID string) error
	DeleteUserMFAChallenges(ctx context.Context, userID string) error

	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	Ready(ctx context.Context) error
}

// Sessions ends login sessions when a password changes or a user is
// disabled or deleted.
type Sessions interface {
	Get(ctx context.Context, id string) (*storage.LoginSession, error)
	ListByUser(ctx context.Context, userID string) ([]*storage.LoginSession, error)
	Delete(ctx context.Context, id string) error
	DeleteByUser(ctx context.Context, userID string) error
}

var (
	_ Store    = (*storage.Store)(nil)
	_ Sessions = (*storage.MemorySessionStore)(nil)
	_ Sessions = (*storage.RedisSessionStore)(nil)
)

// Config contains the user API's settings.
type Config struct {
	// CursorKey signs pagination cursors; 32 bytes derived from the system
	// secret.
	CursorKey []byte
	Logger    *slog.Logger
	// SessionEnder ends login sessions. When nil, New builds one that
	// sends no back-channel logout tokens.
	SessionEnder *logout.Ender
	// MFACodec encrypts TOTP secrets and hashes backup codes; build it
	// with provider.NewMFACodec.
	MFACodec *mfa.Codec
}

// API serves the user API.
type API struct {
	store     Store
	passwords *provider.PasswordLimiter
	failures  *failureCounter
	sessions  Sessions
	ender     *logout.Ender
	mfa       *mfa.Codec
	verifier  *bearer.Verifier
	cursors   cursorCodec
	logger    *slog.Logger
}

// New returns the user API. verifier checks every access token.
func New(cfg Config, store Store, sessions Sessions, verifier *bearer.Verifier) (*API, error) {
	if len(cfg.CursorKey) < 32 {
		return nil, errors.New("user API cursor key must be at least 32 bytes")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MFACodec == nil {
		return nil, errors.New("user API needs an MFA codec")
	}
	if cfg.SessionEnder == nil {
		cfg.SessionEnder = logout.NewEnder(sessions, store, nil, cfg.Logger)
	}
	return &API{store: store, passwords: provider.NewPasswordLimiter(), failures: newFailureCounter(), sessions: sessions, ender: cfg.SessionEnder, mfa: cfg.MFACodec, verifier: verifier,
		cursors: cursorCodec{key: cfg.CursorKey}, logger: cfg.Logger}, nil
}

// maxBodyBytes caps request bodies; profiles and roles are small.
const maxBodyBytes = 64 << 10

// Handler returns the HTTP handler serving every route.
func (a *API) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	engine.HandleMethodNotAllowed = true
	_ = engine.SetTrustedProxies(nil)
	engine.Use(httpapi.Recover(a.logger), httpapi.RequestID(a.logger, "userapi"), httpapi.LimitBody(maxBodyBytes))

	engine.GET("/health/alive", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	engine.GET("/health/ready", httpapi.Ready(a.logger, httpapi.Dependency{Name: "database", Ping: a.store.Ready}))

	me := engine.Group("/v1/me", a.verifier.Middleware(ScopeAccount), httpapi.RequirePerson(a.logger, a.store.GetUser))
	me.GET("", a.getMe)
	me.PATCH("", a.patchMe)
	me.POST("/password", a.changePassword)
	me.GET("/permissions", a.myPermissions)
	me.GET("/mfa", a.getMFA)
	me.POST("/mfa/totp", a.requireRecentAuth, a.startTOTP)
	me.POST("/mfa/totp/confirm", a.requireRecentAuth, a.confirmTOTP)
	me.DELETE("/mfa/totp", a.requireRecentAuth, a.deleteTOTP)
	me.POST("/mfa/backup-codes", a.requireRecentAuth, a.regenerateBackupCodes)

	admin := engine.Group("/v1", a.verifier.Middleware(ScopeAdmin), httpapi.RequirePerson(a.logger, a.store.GetUser))
	admin.GET("/users", a.require(storage.PermissionUsersRead), a.listUsers)
	admin.POST("/users", a.require(storage.PermissionUsersWrite), a.createUser)
	admin.GET("/users/:id", a.require(storage.PermissionUsersRead), a.getUser)
	admin.PATCH("/users/:id", a.require(storage.PermissionUsersWrite), a.patchUser)
	admin.POST("/users/:id/disable", a.require(storage.PermissionUsersWrite), a.disableUser)
	admin.POST("/users/:id/enable", a.require(storage.PermissionUsersWrite), a.enableUser)
	admin.DELETE("/users/:id", a.require(storage.PermissionUsersWrite), a.deleteUser)
	admin.DELETE("/users/:id/mfa", a.require(storage.PermissionUsersWrite), a.resetMFA)
	admin.GET("/users/:id/roles", a.require(storage.PermissionUsersRead), a.listUserRoles)
	admin.PUT("/users/:id/roles/:role", a.require(storage.PermissionRolesWrite), a.assignRole)
	admin.DELETE("/users/:id/roles/:role", a.require(storage.PermissionRolesWrite), a.removeRole)
	admin.GET("/roles", a.require(storage.PermissionUsersRead), a.listRoles)
	admin.POST("/roles", a.require(storage.PermissionRolesWrite), a.createRole)
	admin.GET("/roles/:id", a.require(storage.PermissionUsersRead), a.getRole)
	admin.PATCH("/roles/:id", a.require(storage.PermissionRolesWrite), a.patchRole)
	admin.DELETE("/roles/:id", a.require(storage.PermissionRolesWrite), a.deleteRole)
	admin.GET("/audit-events", a.require(storage.PermissionAuditRead), a.listAuditEvents)

	engine.NoRoute(func(c *gin.Context) { writeProblem(c, http.StatusNotFound, "Not found", "No such endpoint.") })
	engine.NoMethod(func(c *gin.Context) {
		writeProblem(c, http.StatusMethodNotAllowed, "Method not allowed", "HTTP method not allowed on this endpoint.")
	})
	return engine
}

type contextKey string

const (
	keyPermissions contextKey = "latchkey.permissions"
)

// require checks, on every request, that the acting user holds permission
// through a role.
func (a *API) require(permission string) gin.HandlerFunc {
	return func(c *gin.Context) {
		user := currentUser(c)
		permissions, err := a.store.UserPermissions(c.Request.Context(), user.ID)
		if err != nil {
			a.writeStoreError(c, err)
			return
		}
		if !slices.Contains(permissions, permission) {
			a.auditDenied(c, "missing permission "+permission)
			writeProblem(c, http.StatusForbidden, "Forbidden", "This endpoint needs the permission "+permission+".")
			return
		}
		c.Set(string(keyPermissions), permissions)
		c.Next()
	}
}

// covers reports whether the acting user has every permission in
// required. Administrators can hand out, and act on holders of, only the
// permissions they have themselves, so no permission can be used to gain
// another.
func covers(c *gin.Context, required []string) bool {
	value, _ := c.Get(string(keyPermissions))
	granted, _ := value.([]string)
	for _, permission := range required {
		if !slices.Contains(granted, permission) {
			return false
		}
	}
	return true
}

// requireCovers responds with 403 unless the acting user holds every permission
// of target, the user about to be changed.
func (a *API) requireCovers(c *gin.Context, target *storage.User) bool {
	permissions, err := a.store.UserPermissions(c.Request.Context(), target.ID)
	if err != nil {
		a.writeStoreError(c, err)
		return false
	}
	if !covers(c, permissions) {
		a.auditDenied(c, "target holds permissions the actor lacks")
		writeProblem(c, http.StatusForbidden, "Forbidden", "This user holds permissions you do not hold.")
		return false
	}
	return true
}

// requireCoversHolders responds with 403 unless the acting user holds every
// permission of every user who holds role, because changing or deleting
// the role changes what they hold.
func (a *API) requireCoversHolders(c *gin.Context, role *storage.Role) bool {
	permissions, err := a.store.RoleHolderPermissions(c.Request.Context(), role.ID)
	if err != nil {
		a.writeStoreError(c, err)
		return false
	}
	if !covers(c, permissions) || !covers(c, role.Permissions) {
		a.auditDenied(c, "role holders hold permissions the actor lacks")
		writeProblem(c, http.StatusForbidden, "Forbidden", "Users holding this role hold permissions you do not hold.")
		return false
	}
	return true
}

// auditDenied records a refused admin request, so that attempts to exceed
// one's permissions show in the audit log.
func (a *API) auditDenied(c *gin.Context, reason string) {
	event := auditEvent(c, "admin.request_denied", c.Param("id"), map[string]any{
		"reason": reason, "method": c.Request.Method, "route": c.FullPath(),
	})
	event.Outcome = storage.OutcomeFailure
	if err := a.store.AppendAuditEvent(c.Request.Context(), event); err != nil {
		a.logger.ErrorContext(c.Request.Context(), "write audit event failed", "error", err)
	}
}

func currentUser(c *gin.Context) *storage.User {
	return httpapi.CurrentUser(c)
}

// auditEvent starts an event with the acting user and the request's
// network details.
func auditEvent(c *gin.Context, action, subject string, details map[string]any) *storage.AuditEvent {
	event := &storage.AuditEvent{
		ActorType: storage.ActorUser,
		Subject:   subject,
		Action:    action,
		Outcome:   storage.OutcomeSuccess,
		IPAddress: c.ClientIP(),
		UserAgent: c.Request.UserAgent(),
		RequestID: httpapi.RequestIDFrom(c),
		Details:   details,
	}
	if user := currentUser(c); user != nil {
		event.ActorID = user.ID
	}
	return event
}

// endSessions ends a user's login sessions other than keepSessionID, the
// tokens issued under them and the sign-ins waiting for a second factor.
// reason goes in the audit log. Sessions live outside the database, so
// this runs after the change that required it has committed.
func (a *API) endSessions(c *gin.Context, userID, keepSessionID, reason string) error {
	ctx := c.Request.Context()
	// A sign-in waiting for its second factor began with what just changed.
	if err := a.store.DeleteUserMFAChallenges(ctx, userID); err != nil {
		return err
	}
	event := auditEvent(c, logout.ActionSessionEnded, userID, map[string]any{"reason": reason})
	if err := a.ender.EndAllOf(ctx, userID, keepSessionID, event); err != nil {
		return err
	}
	return a.store.RevokeUserTokens(ctx, userID, keepSessionID)
}

// errEmailTaken rejects a second account with the same verified address,
// which apps that link accounts by verified email would treat as one.
var errEmailTaken = fmt.Errorf("%w: another user has this verified email address", storage.ErrConflict)

func (a *API) checkVerifiedEmail(ctx context.Context, user *storage.User) error {
	if !user.EmailVerified || user.Email == "" {
		return nil
	}
	inUse, err := a.store.VerifiedEmailTaken(ctx, user.Email, user.ID)
	if err != nil {
		return err
	}
	if inUse {
		return errEmailTaken
	}
	return nil
}

// updateProfile applies a validated patch to the current row of a user,
// locked for the transaction, and records the change, so that two
// concurrent edits of one user cannot undo each other.
func (a *API) updateProfile(c *gin.Context, userID string, patch *profilePatch, action string) (*storage.User, error) {
	var updated *storage.User
	err := a.store.InTx(c.Request.Context(), func(ctx context.Context) error {
		user, err := a.store.GetUserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		var ignored fieldErrors // the patch was validated before
		patch.apply(user, &ignored)
		if err := a.checkVerifiedEmail(ctx, user); err != nil {
			return err
		}
		if err := a.store.UpdateUser(ctx, user); err != nil {
			return err
		}
		updated = user
		return a.store.AppendAuditEvent(ctx, auditEvent(c, action, user.ID, changedFields(patch)))
	})
	return updated, err
}
