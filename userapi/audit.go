package userapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/latchkey/latchkey/storage"
)

type auditEventJSON struct {
	ID         string         `json:"id"`
	OccurredAt time.Time      `json:"occurred_at"`
	ActorType  string         `json:"actor_type"`
	ActorID    string         `json:"actor_id"`
	Subject    string         `json:"subject"`
	Action     string         `json:"action"`
	Outcome    string         `json:"outcome"`
	IPAddress  string         `json:"ip_address"`
	UserAgent  string         `json:"user_agent"`
	RequestID  string         `json:"request_id"`
	Details    map[string]any `json:"details"`
}

// listAuditEvents returns audit events newest first, filtered by ?actor=,
// ?subject=, ?action=, ?outcome=, ?since= and ?until= (RFC 3339 times),
// and continued by ?cursor=.
func (a *API) listAuditEvents(c *gin.Context) {
	var errs fieldErrors
	filter := storage.AuditFilter{
		ActorID: c.Query("actor"), Subject: c.Query("subject"), Action: c.Query("action"), Outcome: c.Query("outcome"),
		Limit: pageSize(c, &errs) + 1,
	}
	for name, target := range map[string]*time.Time{"since": &filter.Since, "until": &filter.Until} {
		if raw := c.Query(name); raw != "" {
			parsed, err := time.Parse(time.RFC3339, raw)
			if err != nil {
				errs.add(name, "must be an RFC 3339 time, such as 2026-01-02T15:04:05Z")
			}
			*target = parsed
		}
	}
	if cursor := c.Query("cursor"); cursor != "" {
		if err := a.cursors.decode("audit", cursor, &filter.BeforeSeq); err != nil || filter.BeforeSeq <= 0 {
			errs.add("cursor", "is invalid")
		}
	}
	if errs.write(c) {
		return
	}

	events, err := a.store.ListAuditEvents(c.Request.Context(), filter)
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	limit := filter.Limit - 1
	items := make([]auditEventJSON, 0, len(events))
	response := gin.H{}
	for i, event := range events {
		if i == limit {
			response["next_cursor"] = a.cursors.encode("audit", events[i-1].Seq)
			break
		}
		items = append(items, auditEventJSON{
			ID: event.ID, OccurredAt: event.OccurredAt, ActorType: event.ActorType, ActorID: event.ActorID,
			Subject: event.Subject, Action: event.Action, Outcome: event.Outcome, IPAddress: event.IPAddress,
			UserAgent: event.UserAgent, RequestID: event.RequestID, Details: event.Details,
		})
	}
	response["items"] = items
	c.JSON(http.StatusOK, response)
}
