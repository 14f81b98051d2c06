package sessionapi

import (
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/httpapi"
	"github.com/latchkey/latchkey/storage"
)

// sessionView is a login session as the API shows it. The id is the
// session's public id, the sid claim of its tokens, not its cookie.
type sessionView struct {
	ID           string    `json:"id"`
	UserID       string    `json:"user_id"`
	Current      bool      `json:"current"`
	CreatedAt    time.Time `json:"created_at"`
	LastActiveAt time.Time `json:"last_active_at"`
	AuthTime     time.Time `json:"auth_time"`
	// ExpiresAt is the absolute end; IdleExpiresAt is when the session
	// ends unless it is used again, the earlier of the two.
	ExpiresAt     time.Time    `json:"expires_at"`
	IdleExpiresAt time.Time    `json:"idle_expires_at"`
	AMR           []string     `json:"amr"`
	IPAddress     string       `json:"ip_address"`
	UserAgent     string       `json:"user_agent"`
	Device        string       `json:"device"`
	Browser       string       `json:"browser"`
	Clients       []clientView `json:"clients"`
}

type clientView struct {
	ClientID string `json:"client_id"`
	Name     string `json:"name,omitempty"`
}

type sessionList struct {
	Sessions []sessionView `json:"sessions"`
}

// view renders sessions, marking currentID. It reads each client's name; a
// client deleted since is shown by id alone.
func (a *API) view(c *gin.Context, sessions []*storage.LoginSession, currentID string) sessionList {
	names := map[string]string{}
	list := sessionList{Sessions: []sessionView{}}
	for _, s := range sessions {
		device, browser := a.devices.describe(s.UserAgent)
		v := sessionView{
			ID:            s.ID,
			UserID:        s.UserID,
			Current:       s.ID == currentID,
			CreatedAt:     s.CreatedAt.UTC(),
			LastActiveAt:  s.LastSeenAt.UTC(),
			AuthTime:      s.AuthTime.UTC(),
			ExpiresAt:     s.ExpiresAt.UTC(),
			IdleExpiresAt: s.Deadline().UTC(),
			AMR:           s.AMR,
			IPAddress:     s.RemoteAddr,
			UserAgent:     s.UserAgent,
			Device:        device,
			Browser:       browser,
			Clients:       []clientView{},
		}
		for _, clientID := range s.Clients {
			name, known := names[clientID]
			if !known {
				client, err := a.store.GetClientByID(c.Request.Context(), clientID)
				switch {
				case err == nil:
					name = client.Name
				case !errors.Is(err, fosite.ErrNotFound):
					a.logger.WarnContext(c.Request.Context(), "reading a session's client failed", "client_id", clientID, "error", err)
				}
				names[clientID] = name
			}
			v.Clients = append(v.Clients, clientView{ClientID: clientID, Name: name})
		}
		list.Sessions = append(list.Sessions, v)
	}
	return list
}

func (a *API) listOwn(c *gin.Context) {
	a.list(c, httpapi.CurrentUser(c).ID)
}

func (a *API) listOfUser(c *gin.Context) {
	a.list(c, c.Param("id"))
}

func (a *API) list(c *gin.Context, userID string) {
	sessions, err := a.sessions.ListByUser(c.Request.Context(), userID)
	if err != nil {
		httpapi.WriteStoreError(c, a.logger, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, a.view(c, sessions, currentSessionID(c)))
}

// endOwn ends one of the caller's sessions. A session of someone else is
// reported as missing, so that ids cannot be probed.
func (a *API) endOwn(c *gin.Context) {
	a.endOne(c, httpapi.CurrentUser(c).ID, c.Param("id"), "user_request")
}

func (a *API) endOfUser(c *gin.Context) {
	a.endOne(c, c.Param("id"), c.Param("sid"), "admin_request")
}

// sessionIDPattern is the form of a session id: a base64url SHA-256 hash.
var sessionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func (a *API) endOne(c *gin.Context, userID, sessionID, reason string) {
	ctx := c.Request.Context()
	// Anything else names no session, and could name another kind of key
	// in the session store.
	if !sessionIDPattern.MatchString(sessionID) {
		httpapi.WriteProblem(c, http.StatusNotFound, "Not found", "No such session.")
		return
	}
	session, err := a.sessions.Get(ctx, sessionID)
	if errors.Is(err, fosite.ErrNotFound) || (err == nil && session.UserID != userID) {
		httpapi.WriteProblem(c, http.StatusNotFound, "Not found", "No such session.")
		return
	}
	if err != nil {
		httpapi.WriteStoreError(c, a.logger, err)
		return
	}
	if err := a.ender.End(ctx, session, a.auditEvent(c, map[string]any{"reason": reason})); err != nil {
		httpapi.WriteStoreError(c, a.logger, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// endOwnAll ends the caller's sessions: all of them, or with
// except=current all but the one the token was issued in.
func (a *API) endOwnAll(c *gin.Context) {
	keep := ""
	switch except := c.Query("except"); except {
	case "":
	case "current":
		keep = currentSessionID(c)
	default:
		httpapi.WriteProblem(c, http.StatusBadRequest, "Invalid request", "One or more fields are invalid.",
			httpapi.FieldError{Field: "except", Detail: `must be "current" or absent`})
		return
	}
	a.endAll(c, httpapi.CurrentUser(c).ID, keep, "user_request")
}

func (a *API) endAllOfUser(c *gin.Context) {
	a.endAll(c, c.Param("id"), "", "admin_request")
}

func (a *API) endAll(c *gin.Context, userID, keep, reason string) {
	event := a.auditEvent(c, map[string]any{"reason": reason})
	if err := a.ender.EndAllOf(c.Request.Context(), userID, keep, event); err != nil {
		httpapi.WriteStoreError(c, a.logger, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// statsView is GET /v1/sessions/stats.
type statsView struct {
	ActiveSessions    int64            `json:"active_sessions"`
	ActiveUsers       activeUsersView  `json:"active_users"`
	LoginsPerHour     []hourView       `json:"logins_per_hour"`
	SessionsPerClient map[string]int64 `json:"sessions_per_client"`
	MFASessions       int64            `json:"mfa_sessions"`
	// MFAShare is MFASessions / ActiveSessions, 0 without sessions.
	MFAShare float64 `json:"mfa_share"`
}

type activeUsersView struct {
	Now     int64 `json:"now"`
	Last24h int64 `json:"last_24h"`
	Last30d int64 `json:"last_30d"`
}

type hourView struct {
	Hour   time.Time `json:"hour"`
	Logins int64     `json:"logins"`
}

func (a *API) stats(c *gin.Context) {
	stats, err := a.sessions.Stats(c.Request.Context())
	if err != nil {
		httpapi.WriteStoreError(c, a.logger, err)
		return
	}
	view := statsView{
		ActiveSessions:    stats.ActiveSessions,
		ActiveUsers:       activeUsersView{Now: stats.ActiveUsers, Last24h: stats.ActiveUsers24h, Last30d: stats.ActiveUsers30d},
		LoginsPerHour:     make([]hourView, 0, len(stats.LoginsPerHour)),
		SessionsPerClient: stats.SessionsPerClient,
		MFASessions:       stats.MFASessions,
	}
	if stats.ActiveSessions > 0 {
		view.MFAShare = float64(stats.MFASessions) / float64(stats.ActiveSessions)
	}
	for _, hour := range stats.LoginsPerHour {
		view.LoginsPerHour = append(view.LoginsPerHour, hourView{Hour: hour.Hour, Logins: hour.Count})
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, view)
}
