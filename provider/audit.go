package provider

import (
	"context"
	"errors"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// Audit actions the provider records.
const (
	auditLogin             = "login"
	auditConsentGranted    = "consent.granted"
	auditConsentDenied     = "consent.denied"
	auditTokenRevoked      = "token.revoked"
	auditRefreshTokenReuse = "refresh_token.reuse_detected"
	auditCodeReuse         = "authorization_code.reuse_detected"
)

// newAuditEvent fills in the request's network details.
func newAuditEvent(c *gin.Context, actorType, actorID, subject, action, outcome string, details map[string]any) *storage.AuditEvent {
	requestID, _ := c.Request.Context().Value(requestIDKey{}).(string)
	return &storage.AuditEvent{
		ActorType: actorType,
		ActorID:   actorID,
		Subject:   subject,
		Action:    action,
		Outcome:   outcome,
		IPAddress: c.ClientIP(),
		UserAgent: c.Request.UserAgent(),
		RequestID: requestID,
		Details:   details,
	}
}

// audit records an event outside any transaction, such as a failed login. A
// failure to record it is logged, not returned: the request it describes
// has already happened.
func (p *Provider) audit(ctx context.Context, event *storage.AuditEvent) {
	if err := p.store.AppendAuditEvent(ctx, event); err != nil {
		p.logger.ErrorContext(ctx, "write audit event failed", "action", event.Action, "error", err)
	}
}

// auditTokenError records refresh-token and code reuse, which fosite
// detects and rejects with invalid_grant.
func (p *Provider) auditTokenError(c *gin.Context, ar fosite.AccessRequester, err error) {
	action := ""
	switch {
	case errors.Is(err, fosite.ErrInactiveToken), errors.Is(err, storage.ErrRefreshTokenAlreadyRotated):
		action = auditRefreshTokenReuse
	case errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
		action = auditCodeReuse
	default:
		return
	}
	clientID, subject := "", ""
	if ar != nil && ar.GetClient() != nil {
		clientID = ar.GetClient().GetID()
		if ar.GetSession() != nil {
			subject = ar.GetSession().GetSubject()
		}
	}
	p.audit(c.Request.Context(), newAuditEvent(c, storage.ActorClient, clientID, subject, action, storage.OutcomeFailure,
		map[string]any{"grant_revoked": true}))
}
