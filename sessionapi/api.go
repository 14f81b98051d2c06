// Package sessionapi is the session API: a resource server on which people
// list and end their login sessions, and operators with the sessions:admin
// permission list and end anyone's and read statistics.
package sessionapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/httpapi"
	"github.com/latchkey/latchkey/logout"
	"github.com/latchkey/latchkey/storage"
)

// ScopeAdmin is the scope an access token needs for the admin routes,
// which also need the sessions:admin permission.
const ScopeAdmin = "admin"

// Store is the durable state the session API reads.
type Store interface {
	GetUser(ctx context.Context, id string) (*storage.User, error)
	UserPermissions(ctx context.Context, userID string) ([]string, error)
	GetClientByID(ctx context.Context, id string) (*storage.Client, error)
	AppendAuditEvent(ctx context.Context, event *storage.AuditEvent) error
	Ready(ctx context.Context) error
}

// Sessions is the login session store.
type Sessions interface {
	Get(ctx context.Context, id string) (*storage.LoginSession, error)
	ListByUser(ctx context.Context, userID string) ([]*storage.LoginSession, error)
	Stats(ctx context.Context) (*storage.SessionStats, error)
}

var (
	_ Store    = (*storage.Store)(nil)
	_ Sessions = (*storage.MemorySessionStore)(nil)
	_ Sessions = (*storage.RedisSessionStore)(nil)
)

// API serves the session API.
type API struct {
	store    Store
	sessions Sessions
	ender    *logout.Ender
	verifier *bearer.Verifier
	devices  *deviceParser
	logger   *slog.Logger
}

// New returns the session API. verifier checks every access token; ender
// ends sessions.
func New(store Store, sessions Sessions, ender *logout.Ender, verifier *bearer.Verifier, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.Default()
	}
	return &API{store: store, sessions: sessions, ender: ender, verifier: verifier, devices: newDeviceParser(), logger: logger}
}

// Handler returns the HTTP handler serving every route.
func (a *API) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	engine.HandleMethodNotAllowed = true
	// A 307 to the path without the slash would turn DELETE
	// /v1/sessions/{id} with an empty id into DELETE /v1/sessions, which
	// ends every session: clients repeat the method and, on the same host,
	// the Authorization header.
	engine.RedirectTrailingSlash = false
	_ = engine.SetTrustedProxies(nil)
	engine.Use(httpapi.Recover(a.logger), httpapi.RequestID(a.logger, "sessionapi"), httpapi.LimitBody(4<<10))

	engine.GET("/health/alive", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	dependencies := []httpapi.Dependency{{Name: "database", Ping: a.store.Ready}}
	if pinger, ok := a.sessions.(interface{ Ping(context.Context) error }); ok {
		dependencies = append(dependencies, httpapi.Dependency{Name: "sessions", Ping: pinger.Ping})
	}
	engine.GET("/health/ready", httpapi.Ready(a.logger, dependencies...))

	// Any token issued to a person in a login session may list and end
	// that person's sessions, whatever app it was issued to.
	own := engine.Group("/v1/sessions", a.verifier.Middleware(), httpapi.RequirePerson(a.logger, a.store.GetUser))
	own.GET("", a.listOwn)
	own.DELETE("", a.endOwnAll)
	own.DELETE("/:id", a.endOwn)

	admin := engine.Group("/v1", a.verifier.Middleware(ScopeAdmin), httpapi.RequirePerson(a.logger, a.store.GetUser), a.requireAdmin)
	admin.GET("/sessions/stats", a.stats)
	admin.GET("/users/:id/sessions", a.requireUser, a.listOfUser)
	admin.DELETE("/users/:id/sessions", a.requireUser, a.endAllOfUser)
	admin.DELETE("/users/:id/sessions/:sid", a.requireUser, a.endOfUser)

	engine.NoRoute(func(c *gin.Context) { httpapi.WriteProblem(c, http.StatusNotFound, "Not found", "No such endpoint.") })
	engine.NoMethod(func(c *gin.Context) {
		httpapi.WriteProblem(c, http.StatusMethodNotAllowed, "Method not allowed", "HTTP method not allowed on this endpoint.")
	})
	return engine
}

// requireAdmin checks, on every request, that the acting user holds
// sessions:admin through a role.
func (a *API) requireAdmin(c *gin.Context) {
	user := httpapi.CurrentUser(c)
	permissions, err := a.store.UserPermissions(c.Request.Context(), user.ID)
	if err != nil {
		httpapi.WriteStoreError(c, a.logger, err)
		return
	}
	if !slices.Contains(permissions, storage.PermissionSessionsAdmin) {
		a.auditDenied(c, "missing permission "+storage.PermissionSessionsAdmin)
		httpapi.WriteProblem(c, http.StatusForbidden, "Forbidden", "This endpoint needs the permission "+storage.PermissionSessionsAdmin+".")
		return
	}
	c.Next()
}

// auditDenied records an administrator's request that was refused.
func (a *API) auditDenied(c *gin.Context, reason string) {
	event := a.auditEvent(c, map[string]any{"reason": reason, "method": c.Request.Method, "route": c.FullPath()})
	event.Action = "admin.request_denied"
	event.Subject = c.Param("id")
	event.Outcome = storage.OutcomeFailure
	if err := a.store.AppendAuditEvent(c.Request.Context(), event); err != nil {
		a.logger.ErrorContext(c.Request.Context(), "write audit event failed", "error", err)
	}
}

// requireUser rejects with 404 a user id that names no user, and with 403
// a user who holds permissions the acting administrator lacks. Ids must be
// UUIDs in canonical form: PostgreSQL would also read other spellings, and
// the session store would not.
func (a *API) requireUser(c *gin.Context) {
	id := c.Param("id")
	if parsed, err := uuid.Parse(id); err != nil || parsed.String() != id {
		httpapi.WriteProblem(c, http.StatusNotFound, "Not found", "No such user.")
		return
	}
	ctx := c.Request.Context()
	if _, err := a.store.GetUser(ctx, id); err != nil {
		if errors.Is(err, fosite.ErrNotFound) {
			httpapi.WriteProblem(c, http.StatusNotFound, "Not found", "No such user.")
			return
		}
		httpapi.WriteStoreError(c, a.logger, err)
		return
	}
	targetPermissions, err := a.store.UserPermissions(ctx, id)
	if err != nil {
		httpapi.WriteStoreError(c, a.logger, err)
		return
	}
	actorPermissions, err := a.store.UserPermissions(ctx, httpapi.CurrentUser(c).ID)
	if err != nil {
		httpapi.WriteStoreError(c, a.logger, err)
		return
	}
	for _, permission := range targetPermissions {
		if !slices.Contains(actorPermissions, permission) {
			a.auditDenied(c, "target holds permissions the actor lacks")
			httpapi.WriteProblem(c, http.StatusForbidden, "Forbidden", "This user holds permissions you do not hold.")
			return
		}
	}
	c.Next()
}

func currentSessionID(c *gin.Context) string {
	claims, _ := bearer.ClaimsFrom(c)
	return claims.SessionID
}

// auditEvent starts an event with the acting user and the request's
// network details.
func (a *API) auditEvent(c *gin.Context, details map[string]any) *storage.AuditEvent {
	return &storage.AuditEvent{
		ActorType: storage.ActorUser,
		ActorID:   httpapi.CurrentUser(c).ID,
		Outcome:   storage.OutcomeSuccess,
		IPAddress: c.ClientIP(),
		UserAgent: c.Request.UserAgent(),
		RequestID: httpapi.RequestIDFrom(c),
		Details:   details,
	}
}
