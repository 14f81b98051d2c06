package userapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// recentAuthentication is the maximum age of a token's auth_time on the
// routes that change the second factor.
const recentAuthentication = 5 * time.Minute

// totpIssuer names Latchkey in authenticator apps.
const totpIssuer = "Latchkey"

// requireRecentAuth rejects tokens whose person signed in more than
// recentAuthentication ago, with the step-up challenge of RFC 9470: the
// client signs the person in again with max_age and retries.
func (a *API) requireRecentAuth(c *gin.Context) {
	claims, _ := bearer.ClaimsFrom(c)
	if claims != nil && !claims.AuthTime.IsZero() && time.Since(claims.AuthTime) <= recentAuthentication {
		c.Next()
		return
	}
	maxAge := int(recentAuthentication / time.Second)
	c.Header("WWW-Authenticate", fmt.Sprintf(
		`Bearer error="insufficient_user_authentication", error_description="Sign in again: the authentication is older than %d seconds", max_age=%d`,
		maxAge, maxAge))
	writeProblem(c, http.StatusUnauthorized, "Unauthorized",
		fmt.Sprintf("This change needs a sign-in from the last %d seconds. Send the person through the authorization endpoint with max_age=%d, then retry with the new token.", maxAge, maxAge))
}

// tokenUsedSecondFactor reports whether the access token was issued in a
// session that passed the second factor: its amr lists otp.
func tokenUsedSecondFactor(c *gin.Context) bool {
	claims, _ := bearer.ClaimsFrom(c)
	if claims == nil {
		return false
	}
	methods, _ := claims.Raw["amr"].([]any)
	for _, method := range methods {
		if method == "otp" {
			return true
		}
	}
	return false
}

// writeSecondFactorRequired rejects a change to an account protected by a
// second factor when the token did not pass it, with the RFC 9470
// challenge naming the MFA class.
func writeSecondFactorRequired(c *gin.Context) {
	maxAge := int(recentAuthentication / time.Second)
	c.Header("WWW-Authenticate", fmt.Sprintf(
		`Bearer error="insufficient_user_authentication", error_description="Sign in again with the second factor", acr_values="%s", max_age=%d`,
		provider.ACRMFA, maxAge))
	writeProblem(c, http.StatusUnauthorized, "Unauthorized",
		fmt.Sprintf("This change needs a sign-in with the second factor. Send the person through the authorization endpoint with acr_values=%s and max_age=%d, then retry with the new token.", provider.ACRMFA, maxAge))
}

type mfaStatusJSON struct {
	TOTPEnabled          bool `json:"totp_enabled"`
	TOTPPending          bool `json:"totp_pending"`
	BackupCodesRemaining int  `json:"backup_codes_remaining"`
	// LockedUntil is set while wrong codes keep the second step locked.
	LockedUntil *time.Time `json:"locked_until,omitempty"`
}

// getMFA shows whether the person's second factor is on and how many
// backup codes remain.
func (a *API) getMFA(c *gin.Context) {
	state, err := a.store.GetMFA(c.Request.Context(), currentUser(c).ID)
	if errors.Is(err, fosite.ErrNotFound) {
		c.JSON(http.StatusOK, mfaStatusJSON{})
		return
	}
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	status := mfaStatusJSON{TOTPEnabled: state.Confirmed, TOTPPending: !state.Confirmed}
	if state.Confirmed {
		status.BackupCodesRemaining = state.BackupCodesLeft
	}
	if until := state.LockedUntil.UTC(); until.After(time.Now()) {
		status.LockedUntil = &until
	}
	c.JSON(http.StatusOK, status)
}

type enrollmentJSON struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
	// QRCodePNG is the otpauth URI as a PNG image, base64-encoded.
	QRCodePNG string `json:"qr_code_png"`
}

// startTOTP creates a new TOTP secret, pending until confirmed. Starting
// again replaces a pending secret.
func (a *API) startTOTP(c *gin.Context) {
	user := currentUser(c)
	enrollment, err := a.mfa.NewEnrollment(totpIssuer, user.Username)
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	ctx := c.Request.Context()
	err = a.store.InTx(ctx, func(ctx context.Context) error {
		if err := a.store.SaveTOTPEnrollment(ctx, user.ID, a.mfa.SealSecret(user.ID, enrollment.Secret)); err != nil {
			return err
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, "mfa.totp_enrollment_started", user.ID, nil))
	})
	if errors.Is(err, storage.ErrConflict) {
		writeProblem(c, http.StatusConflict, "Conflict", "TOTP is already on. Turn it off before enrolling a new secret.")
		return
	}
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, enrollmentJSON{
		Secret:     enrollment.Secret,
		OTPAuthURI: enrollment.URI,
		QRCodePNG:  base64.StdEncoding.EncodeToString(enrollment.QRCodePNG),
	})
}

type codeBody struct {
	Code string `json:"code"`
}

type backupCodesJSON struct {
	BackupCodes []string `json:"backup_codes"`
}

// confirmTOTP turns TOTP on when the code matches the pending secret, and
// returns the backup codes, shown this once.
func (a *API) confirmTOTP(c *gin.Context) {
	var body codeBody
	if !decodeJSON(c, &body) {
		return
	}
	user := currentUser(c)
	ctx := c.Request.Context()
	state, err := a.store.GetMFA(ctx, user.ID)
	if errors.Is(err, fosite.ErrNotFound) || (err == nil && state.Confirmed) {
		writeProblem(c, http.StatusConflict, "Conflict", "There is no pending TOTP enrolment. Start one with POST /v1/me/mfa/totp.")
		return
	}
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	secret, err := a.mfa.OpenSecret(user.ID, state.TOTPSecret)
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	step, ok := mfa.MatchTOTP(secret, body.Code, time.Now())
	if !ok {
		writeProblem(c, http.StatusBadRequest, "Invalid request", "The code does not match the secret.",
			fieldError{Field: "code", Detail: "does not match; check the device's clock and enter the current code"})
		return
	}
	a.issueBackupCodes(c, "mfa.totp_enabled", func(ctx context.Context, hashes [][]byte) error {
		return a.store.ConfirmTOTP(ctx, user.ID, step, hashes)
	})
}

// issueBackupCodes makes new backup codes, stores their hashes with store
// in one transaction with the audit event action, and shows the codes
// this once.
func (a *API) issueBackupCodes(c *gin.Context, action string, store func(ctx context.Context, hashes [][]byte) error) {
	codes, hashes, err := a.mfa.NewBackupCodes()
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	err = a.store.InTx(c.Request.Context(), func(ctx context.Context) error {
		if err := store(ctx, hashes); err != nil {
			return err
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, action, currentUser(c).ID, nil))
	})
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, backupCodesJSON{BackupCodes: codes})
}

// regenerateBackupCodes replaces the backup codes; the old ones stop
// working.
func (a *API) regenerateBackupCodes(c *gin.Context) {
	user := currentUser(c)
	ctx := c.Request.Context()
	state, err := a.store.GetMFA(ctx, user.ID)
	if errors.Is(err, fosite.ErrNotFound) || (err == nil && !state.Confirmed) {
		writeProblem(c, http.StatusConflict, "Conflict", "TOTP is off, so there are no backup codes to replace.")
		return
	}
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	// New codes must not be the reward of a stolen password alone.
	if !tokenUsedSecondFactor(c) {
		writeSecondFactorRequired(c)
		return
	}
	a.issueBackupCodes(c, "mfa.backup_codes_regenerated", func(ctx context.Context, hashes [][]byte) error {
		return a.store.ReplaceBackupCodes(ctx, user.ID, hashes)
	})
}

// deleteTOTP turns the person's second factor off. Once it is on, only a
// token that passed it can turn it off.
func (a *API) deleteTOTP(c *gin.Context) {
	user := currentUser(c)
	state, err := a.store.GetMFA(c.Request.Context(), user.ID)
	if err != nil && !errors.Is(err, fosite.ErrNotFound) {
		a.writeStoreError(c, err)
		return
	}
	if err == nil && state.Confirmed && !tokenUsedSecondFactor(c) {
		writeSecondFactorRequired(c)
		return
	}
	a.removeMFA(c, user, "mfa.totp_disabled")
}

// resetMFA turns another user's second factor off, for a person who lost
// both the device and the backup codes.
func (a *API) resetMFA(c *gin.Context) {
	user, ok := a.userParam(c)
	if !ok || !a.requireCovers(c, user) {
		return
	}
	a.removeMFA(c, user, "mfa.reset")
}

func (a *API) removeMFA(c *gin.Context, user *storage.User, action string) {
	ctx := c.Request.Context()
	err := a.store.InTx(ctx, func(ctx context.Context) error {
		if err := a.store.DeleteMFA(ctx, user.ID); err != nil {
			return err
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, action, user.ID, nil))
	})
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
