package userapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// minPasswordLength follows NIST SP 800-63B §5.1.1.2 for passwords chosen
// by the user.
const minPasswordLength = 8

func (a *API) getMe(c *gin.Context) {
	c.JSON(http.StatusOK, toUserJSON(currentUser(c)))
}

// patchMe edits the person's own profile. Username, verification flags
// and the disabled state are for administrators.
func (a *API) patchMe(c *gin.Context) {
	var patch profilePatch
	if !decodeJSON(c, &patch) {
		return
	}
	var errs fieldErrors
	for field, set := range map[string]bool{
		"username": patch.Username != nil, "email_verified": patch.EmailVerified != nil,
		"phone_number_verified": patch.PhoneNumberVerified != nil,
	} {
		if set {
			errs.add(field, "only an administrator can change this field")
		}
	}
	preview := *currentUser(c)
	patch.apply(&preview, &errs)
	if errs.write(c) {
		return
	}

	user, err := a.updateProfile(c, preview.ID, &patch, "user.profile_updated")
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, toUserJSON(user))
}

// changedFields lists the fields a patch sets, for the audit log; values
// stay out of it.
func changedFields(p *profilePatch) map[string]any {
	var fields []string
	for name, set := range map[string]bool{
		"username": p.Username != nil, "email": p.Email != nil, "email_verified": p.EmailVerified != nil,
		"name": p.Name != nil, "given_name": p.GivenName != nil, "family_name": p.FamilyName != nil,
		"preferred_username": p.PreferredUsername != nil, "picture": p.Picture != nil, "locale": p.Locale != nil,
		"zoneinfo": p.Zoneinfo != nil, "phone_number": p.PhoneNumber != nil, "phone_number_verified": p.PhoneNumberVerified != nil,
		"middle_name": p.MiddleName != nil, "nickname": p.Nickname != nil, "profile": p.Profile != nil,
		"website": p.Website != nil, "gender": p.Gender != nil, "birthdate": p.Birthdate != nil, "address": p.Address != nil,
	} {
		if set {
			fields = append(fields, name)
		}
	}
	slices.Sort(fields)
	return map[string]any{"fields": fields}
}

// changePassword sets a new password given the current one, then ends the
// person's other login sessions and their tokens.
func (a *API) changePassword(c *gin.Context) {
	var body struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if !decodeJSON(c, &body) {
		return
	}
	user := currentUser(c)
	var errs fieldErrors
	if len(body.NewPassword) < minPasswordLength {
		errs.add("new_password", "must be at least 8 characters")
	}
	if len(body.NewPassword) > 1024 {
		errs.add("new_password", "must be at most 1024 characters")
	}
	if errs.write(c) {
		return
	}

	ctx := c.Request.Context()
	if wait := a.failures.blocked(user.ID); wait > 0 {
		c.Header("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeProblem(c, http.StatusTooManyRequests, "Too many wrong passwords", "Too many wrong current passwords. Try again later.")
		return
	}
	matches, err := a.passwords.Verify(ctx, user.PasswordHash, body.CurrentPassword)
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	if !matches {
		a.failures.fail(user.ID)
		event := auditEvent(c, "user.password_changed", user.ID, map[string]any{"reason": "wrong current password"})
		event.Outcome = storage.OutcomeFailure
		if err := a.store.AppendAuditEvent(ctx, event); err != nil {
			a.logger.ErrorContext(ctx, "write audit event failed", "error", err)
		}
		writeProblem(c, http.StatusBadRequest, "Invalid request", "The current password is wrong.",
			fieldError{Field: "current_password", Detail: "is wrong"})
		return
	}

	a.failures.reset(user.ID)
	hash := provider.HashPassword(body.NewPassword)
	err = a.store.InTx(ctx, func(ctx context.Context) error {
		if err := a.store.SetPasswordHash(ctx, user.ID, hash); err != nil {
			return err
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, "user.password_changed", user.ID, nil))
	})
	if err != nil {
		a.writeStoreError(c, err)
		return
	}

	claims, _ := bearer.ClaimsFrom(c)
	if err := a.endSessions(c, user.ID, claims.SessionID, "password_changed"); err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (a *API) myPermissions(c *gin.Context) {
	user := currentUser(c)
	permissions, err := a.store.UserPermissions(c.Request.Context(), user.ID)
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	roles, err := a.store.UserRoles(c.Request.Context(), user.ID)
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	names := make([]string, 0, len(roles))
	for _, role := range roles {
		names = append(names, role.Name)
	}
	c.JSON(http.StatusOK, gin.H{"roles": names, "permissions": permissions})
}
