package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/storage"
)

// Authentication context classes (the acr claim). A client asks for MFA by
// sending either MFA value in acr_values.
const (
	ACRPassword = "urn:latchkey:acr:pwd"
	ACRMFA      = "urn:latchkey:acr:mfa"
	// ACRPAPEMultiFactor is the multi-factor policy of OpenID Provider
	// Authentication Policy Extension 1.0, which many clients send.
	ACRPAPEMultiFactor = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
)

// Key purposes of the MFA codec.
const (
	purposeTOTPSecrets = "latchkey totp secrets v1"
	purposeBackupCodes = "latchkey backup codes v1"
)

// MaxMFAFailures is how many wrong codes one login attempt may submit
// before it is ended and the account's MFA step is locked.
const MaxMFAFailures = 5

// DefaultMFALockout is how long the MFA step stays locked after
// MaxMFAFailures wrong codes.
const DefaultMFALockout = 15 * time.Minute

// NewMFACodec returns the codec that encrypts TOTP secrets and hashes
// backup codes, with keys derived from the system secret.
func NewMFACodec(systemSecret []byte) (*mfa.Codec, error) {
	sealKey, err := DeriveKey(systemSecret, purposeTOTPSecrets)
	if err != nil {
		return nil, err
	}
	sealer, err := NewSealer(sealKey)
	if err != nil {
		return nil, err
	}
	backupKey, err := DeriveKey(systemSecret, purposeBackupCodes)
	if err != nil {
		return nil, err
	}
	return mfa.NewCodec(sealer, backupKey)
}

// Audit actions of the MFA step.
const (
	auditMFAFailed = "mfa.failed"
	auditMFALocked = "mfa.locked"
)

// acrValues returns the acr_values of a flow.
func acrValues(flow *authFlow) []string {
	claimed, _ := requestedACRValues(flow.Form)
	return append(strings.Fields(flow.Form.Get("acr_values")), claimed...)
}

// wantsMFA reports whether the client asked for multi-factor
// authentication.
func wantsMFA(flow *authFlow) bool {
	values := acrValues(flow)
	return slices.Contains(values, ACRMFA) || slices.Contains(values, ACRPAPEMultiFactor)
}

// acrFor returns the acr claim for a session: the first requested value
// the session satisfies, or the class of how it authenticated.
func acrFor(session *storage.LoginSession, flow *authFlow) string {
	for _, value := range acrValues(flow) {
		switch value {
		case ACRMFA, ACRPAPEMultiFactor:
			if session.UsedMFA() {
				return value
			}
		case ACRPassword:
			return value
		}
	}
	if session.UsedMFA() {
		return ACRMFA
	}
	return ACRPassword
}

// userHasMFA reports whether a user confirmed a second factor.
func (p *Provider) userHasMFA(ctx context.Context, userID string) (bool, error) {
	state, err := p.store.GetMFA(ctx, userID)
	if errors.Is(err, fosite.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return state.Confirmed, nil
}

// startMFA opens an MFA challenge for userID and sends the browser to the
// code page. stepUpSessionID names the session to elevate, or is empty
// when the challenge follows a password.
func (p *Provider) startMFA(c *gin.Context, flow *authFlow, userID, stepUpSessionID string) {
	challenge := randomToken(32)
	if err := p.store.CreateMFAChallenge(c.Request.Context(), challenge, userID, p.now().Add(flowLifetime)); err != nil {
		p.renderUnavailable(c, err)
		return
	}
	flow.MFAChallenge = challenge
	flow.MFAUserID = userID
	flow.StepUpSessionID = stepUpSessionID
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, "/login/mfa?flow="+url.QueryEscape(p.sealFlow(flow)))
}

type mfaView struct {
	Title, ClientName, Flow, CSRFToken, Error string
}

// mfaPage shows the code form of a flow waiting for its second factor.
func (p *Provider) mfaPage(c *gin.Context) {
	flow, err := p.openFlow(c.Query("flow"))
	if err != nil || flow.MFAChallenge == "" {
		p.renderError(c, http.StatusBadRequest, "This sign-in link is invalid or has expired.", "")
		return
	}
	p.renderMFA(c, http.StatusOK, flow, c.Query("flow"), "")
}

func (p *Provider) renderMFA(c *gin.Context, status int, flow *authFlow, sealed, message string) {
	p.renderPage(c, status, "mfa.html", mfaView{
		Title:      "Two-step verification",
		ClientName: p.clientName(c, flow.Form.Get("client_id")),
		Flow:       sealed,
		CSRFToken:  p.csrfToken(c),
		Error:      message,
	})
}

// mfaSubmit checks a TOTP or backup code, then starts or elevates the
// login session and resumes the authorization request.
func (p *Provider) mfaSubmit(c *gin.Context) {
	ctx := c.Request.Context()
	if !p.checkCSRF(c) {
		p.renderError(c, http.StatusForbidden, "The form expired or was not sent from this site. Go back and try again.", "")
		return
	}
	sealed := c.PostForm("flow")
	flow, err := p.openFlow(sealed)
	if err != nil || flow.MFAChallenge == "" {
		p.renderError(c, http.StatusBadRequest, "This sign-in request is invalid or has expired.", "")
		return
	}
	userID, _, err := p.store.GetMFAChallenge(ctx, flow.MFAChallenge)
	if errors.Is(err, fosite.ErrNotFound) || (err == nil && userID != flow.MFAUserID) {
		p.renderError(c, http.StatusBadRequest, "This sign-in attempt has ended. Return to the application and sign in again.", "")
		return
	}
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}
	user, err := p.store.GetUser(ctx, userID)
	if errors.Is(err, fosite.ErrNotFound) || (err == nil && user.Disabled) {
		p.renderError(c, http.StatusBadRequest, "This account is disabled. Contact your administrator.", "")
		return
	}
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}
	state, err := p.store.GetMFA(ctx, userID)
	if errors.Is(err, fosite.ErrNotFound) || (err == nil && !state.Confirmed) {
		p.renderError(c, http.StatusBadRequest, "Two-step verification was turned off for this account. Return to the application and sign in again.", "")
		return
	}
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}

	// The check is counted before it runs, so that requests sent at once
	// get no more than MaxMFAFailures guesses between a success and a lock.
	clientID := flow.Form.Get("client_id")
	now := p.now()
	checks, err := p.store.ReserveMFACheck(ctx, userID, MaxMFAFailures, now)
	if errors.Is(err, storage.ErrMFALocked) {
		until := state.LockedUntil
		if !until.After(now) {
			until = now.Add(p.cfg.MFALockout)
		}
		p.audit(ctx, newAuditEvent(c, storage.ActorUser, userID, userID, auditMFAFailed, storage.OutcomeFailure,
			map[string]any{"reason": "locked", "client_id": clientID}))
		p.renderMFA(c, http.StatusTooManyRequests, flow, sealed, lockedMessage(until, now))
		return
	}
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}

	method, reason, err := p.checkSecondFactor(ctx, state, strings.TrimSpace(c.PostForm("code")))
	if err != nil {
		p.renderUnavailable(c, err)
		return
	}
	if reason == "replayed_code" {
		// The code was right for a step already used, as the one just
		// used to confirm the enrolment: not a guess, so not counted.
		if err := p.store.ReleaseMFACheck(ctx, userID); err != nil {
			p.renderUnavailable(c, err)
			return
		}
		p.audit(ctx, newAuditEvent(c, storage.ActorUser, userID, userID, auditMFAFailed, storage.OutcomeFailure,
			map[string]any{"reason": reason, "client_id": clientID}))
		p.renderMFA(c, http.StatusBadRequest, flow, sealed, "This code was already used. Wait for the next code from your app.")
		return
	}
	if reason != "" {
		p.rejectCode(c, flow, sealed, userID, reason, checks)
		return
	}
	if err := p.store.ResetMFAChecks(ctx, userID); err != nil {
		p.renderUnavailable(c, err)
		return
	}
	// Of two codes sent at once for one attempt, only the first to delete
	// the challenge goes on.
	if err := p.store.DeleteMFAChallenge(ctx, flow.MFAChallenge); err != nil {
		if errors.Is(err, fosite.ErrNotFound) {
			p.renderError(c, http.StatusBadRequest, "This sign-in attempt has ended. Return to the application and sign in again.", "")
			return
		}
		p.renderUnavailable(c, err)
		return
	}

	ar, err := p.resumeRequest(ctx, flow)
	if err != nil {
		p.writeAuthorizeError(c, ar, err)
		return
	}
	amr := []string{"pwd", "otp"}
	var session *storage.LoginSession
	if flow.StepUpSessionID != "" {
		session, err = p.elevateSession(c, flow.StepUpSessionID, amr)
	} else {
		session, err = p.startSession(c, user, amr)
	}
	if err != nil {
		if errors.Is(err, fosite.ErrNotFound) {
			p.renderError(c, http.StatusBadRequest, "Your sign-in session has ended. Return to the application and sign in again.", "")
			return
		}
		p.renderUnavailable(c, err)
		return
	}
	p.logger.InfoContext(ctx, "login succeeded", "user_id", userID, "second_factor", method)
	p.audit(ctx, newAuditEvent(c, storage.ActorUser, userID, userID, auditLogin, storage.OutcomeSuccess,
		map[string]any{"client_id": clientID, "amr": amr, "second_factor": method, "step_up": flow.StepUpSessionID != ""}))

	flow.MFAChallenge, flow.MFAUserID, flow.StepUpSessionID = "", "", ""
	flow.LoggedIn = true
	p.continueFlow(c, ar, flow, session)
}

// checkSecondFactor checks code as a backup code or a TOTP code. It
// returns the method that matched, or the reason the code was rejected.
func (p *Provider) checkSecondFactor(ctx context.Context, state *storage.MFA, code string) (method, reason string, err error) {
	if mfa.LooksLikeBackupCode(code) {
		hash := p.mfa.HashBackupCode(code)
		if hash == nil {
			return "", "malformed_code", nil
		}
		used, err := p.store.UseBackupCode(ctx, state.UserID, hash)
		if err != nil || !used {
			return "", "wrong_backup_code", err
		}
		return "backup_code", "", nil
	}

	secret, err := p.mfa.OpenSecret(state.UserID, state.TOTPSecret)
	if err != nil {
		return "", "", fmt.Errorf("open TOTP secret: %w", err)
	}
	step, ok := mfa.MatchTOTP(secret, code, p.now())
	if !ok {
		return "", "wrong_code", nil
	}
	accepted, err := p.store.AcceptTOTPStep(ctx, state.UserID, step)
	if err != nil || !accepted {
		return "", "replayed_code", err
	}
	return "totp", "", nil
}

// rejectCode counts a wrong code against the challenge. checks is the
// user's count of code checks, this one included. The last allowed failure
// ends the challenge and locks the account's MFA step.
func (p *Provider) rejectCode(c *gin.Context, flow *authFlow, sealed, userID, reason string, checks int) {
	ctx := c.Request.Context()
	failures, err := p.store.RecordMFAChallengeFailure(ctx, flow.MFAChallenge)
	if err != nil && !errors.Is(err, fosite.ErrNotFound) {
		p.renderUnavailable(c, err)
		return
	}
	clientID := flow.Form.Get("client_id")
	p.logger.InfoContext(ctx, "second factor rejected", "user_id", userID, "reason", reason, "failures", failures)
	p.audit(ctx, newAuditEvent(c, storage.ActorUser, userID, userID, auditMFAFailed, storage.OutcomeFailure,
		map[string]any{"reason": reason, "failures": failures, "client_id": clientID}))
	// The attempt ends after MaxMFAFailures wrong codes, and the account's
	// step locks after MaxMFAFailures checks without a success, across
	// attempts.
	if failures < MaxMFAFailures && checks < MaxMFAFailures && err == nil {
		p.renderMFA(c, http.StatusBadRequest, flow, sealed, "Invalid code. Try again.")
		return
	}

	now := p.now()
	until := now.Add(p.cfg.MFALockout)
	if err := p.store.LockMFA(ctx, userID, until); err != nil {
		p.renderUnavailable(c, err)
		return
	}
	if err := p.store.DeleteMFAChallenge(ctx, flow.MFAChallenge); err != nil {
		p.logger.ErrorContext(ctx, "delete MFA challenge", "user_id", userID, "error", err)
	}
	p.audit(ctx, newAuditEvent(c, storage.ActorUser, userID, userID, auditMFALocked, storage.OutcomeFailure,
		map[string]any{"until": until.UTC().Format(time.RFC3339), "client_id": clientID}))
	p.renderError(c, http.StatusTooManyRequests, "Too many wrong codes. "+lockedMessage(until, now)+" Then return to the application and sign in again.", "")
}

// lockedMessage returns the page text stating when the MFA step opens again.
func lockedMessage(until, now time.Time) string {
	minutes := int(until.Sub(now).Round(time.Minute) / time.Minute)
	if minutes <= 1 {
		return "Two-step verification is locked for this account for about a minute."
	}
	return fmt.Sprintf("Two-step verification is locked for this account for about %d minutes.", minutes)
}

// elevateSession adds the second factor to the browser's current session,
// which must be the one the step-up began for.
func (p *Provider) elevateSession(c *gin.Context, sessionID string, amr []string) (*storage.LoginSession, error) {
	session, err := p.currentLoginSession(c)
	if err != nil {
		return nil, err
	}
	if session == nil || session.ID != sessionID {
		return nil, fosite.ErrNotFound
	}
	authTime := p.now().UTC().Truncate(time.Second)
	if err := p.sessions.Elevate(c.Request.Context(), session.ID, amr, authTime); err != nil {
		return nil, err
	}
	session.AMR = slices.Clone(amr)
	session.AuthTime = authTime
	return session, nil
}
