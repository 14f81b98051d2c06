package userapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// Page sizes of list endpoints.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// pageSize reads ?limit=, collecting an invalid value in errs.
func pageSize(c *gin.Context, errs *fieldErrors) int {
	raw := c.Query("limit")
	if raw == "" {
		return defaultPageSize
	}
	limit, err := strconv.Atoi(raw)
	if err != nil || limit < 1 || limit > maxPageSize {
		errs.add("limit", "must be a number from 1 to 200")
		return defaultPageSize
	}
	return limit
}

// listUsers returns users by username, filtered by ?q= and continued by
// ?cursor= from the previous page's next_cursor.
func (a *API) listUsers(c *gin.Context) {
	var errs fieldErrors
	limit := pageSize(c, &errs)
	var after string
	if cursor := c.Query("cursor"); cursor != "" {
		if err := a.cursors.decode("users:"+c.Query("q"), cursor, &after); err != nil {
			errs.add("cursor", "is invalid or belongs to another query")
		}
	}
	if errs.write(c) {
		return
	}

	users, err := a.store.ListUsers(c.Request.Context(), c.Query("q"), after, limit+1)
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	response := gin.H{"items": []userJSON{}}
	items := make([]userJSON, 0, len(users))
	for i, user := range users {
		if i == limit {
			response["next_cursor"] = a.cursors.encode("users:"+c.Query("q"), users[i-1].Username)
			break
		}
		items = append(items, toUserJSON(user))
	}
	response["items"] = items
	c.JSON(http.StatusOK, response)
}

// userParam loads the user named by the :id path parameter. On failure it
// has written the response.
func (a *API) userParam(c *gin.Context) (*storage.User, bool) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil {
		writeProblem(c, http.StatusNotFound, "Not found", "No such user.")
		return nil, false
	}
	user, err := a.store.GetUser(c.Request.Context(), id)
	if err != nil {
		a.writeStoreError(c, err)
		return nil, false
	}
	return user, true
}

func (a *API) getUser(c *gin.Context) {
	if user, ok := a.userParam(c); ok {
		c.JSON(http.StatusOK, toUserJSON(user))
	}
}

// createUser creates a user with a password and, optionally, roles.
func (a *API) createUser(c *gin.Context) {
	var body struct {
		profilePatch
		Password string   `json:"password"`
		Roles    []string `json:"roles"`
	}
	if !decodeJSON(c, &body) {
		return
	}
	var errs fieldErrors
	if body.Username == nil {
		errs.add("username", "is required")
	}
	if body.Email == nil {
		errs.add("email", "is required")
	}
	if len(body.Password) < minPasswordLength || len(body.Password) > 1024 {
		errs.add("password", "must be 8 to 1024 characters")
	}
	user := &storage.User{ID: uuid.NewString()}
	body.profilePatch.apply(user, &errs)
	if body.Roles == nil {
		body.Roles = []string{storage.RoleUser}
	}
	roles := make([]*storage.Role, 0, len(body.Roles))
	for _, name := range body.Roles {
		role, err := a.store.GetRole(c.Request.Context(), name)
		if err != nil {
			errs.add("roles", "unknown role "+strconv.Quote(name))
			continue
		}
		if !covers(c, role.Permissions) {
			errs.add("roles", "role "+strconv.Quote(name)+" grants permissions you do not hold")
			continue
		}
		roles = append(roles, role)
	}
	if errs.write(c) {
		return
	}
	user.PasswordHash = provider.HashPassword(body.Password)

	err := a.store.InTx(c.Request.Context(), func(ctx context.Context) error {
		if err := a.checkVerifiedEmail(ctx, user); err != nil {
			return err
		}
		if err := a.store.CreateUser(ctx, user); err != nil {
			return err
		}
		for _, role := range roles {
			if err := a.store.AssignRole(ctx, user.ID, role.ID); err != nil {
				return err
			}
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, "user.created", user.ID, map[string]any{"roles": body.Roles}))
	})
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusCreated, toUserJSON(user))
}

func (a *API) patchUser(c *gin.Context) {
	user, ok := a.userParam(c)
	if !ok || !a.requireCovers(c, user) {
		return
	}
	var patch profilePatch
	if !decodeJSON(c, &patch) {
		return
	}
	var errs fieldErrors
	preview := *user
	patch.apply(&preview, &errs)
	if errs.write(c) {
		return
	}
	updated, err := a.updateProfile(c, user.ID, &patch, "user.updated")
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, toUserJSON(updated))
}

func (a *API) disableUser(c *gin.Context) { a.setDisabled(c, true) }
func (a *API) enableUser(c *gin.Context)  { a.setDisabled(c, false) }

// setDisabled disables or enables a user. Disabling ends every login
// session of the user and revokes their tokens.
func (a *API) setDisabled(c *gin.Context, disabled bool) {
	user, ok := a.userParam(c)
	if !ok || !a.requireCovers(c, user) {
		return
	}
	if disabled && user.ID == currentUser(c).ID {
		writeProblem(c, http.StatusBadRequest, "Invalid request", "Administrators cannot disable themselves.")
		return
	}
	user.Disabled = disabled
	action := "user.enabled"
	if disabled {
		action = "user.disabled"
	}
	ctx := c.Request.Context()
	err := a.store.InTx(ctx, func(ctx context.Context) error {
		if err := a.store.SetUserDisabled(ctx, user.ID, disabled); err != nil {
			return err
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, action, user.ID, nil))
	})
	if err == nil && disabled {
		err = a.endSessions(c, user.ID, "", "user_disabled")
	}
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, toUserJSON(user))
}

// deleteUser ends a user's sessions and tokens, then deletes the user.
func (a *API) deleteUser(c *gin.Context) {
	user, ok := a.userParam(c)
	if !ok || !a.requireCovers(c, user) {
		return
	}
	if user.ID == currentUser(c).ID {
		writeProblem(c, http.StatusBadRequest, "Invalid request", "Administrators cannot delete themselves.")
		return
	}
	ctx := c.Request.Context()
	if err := a.endSessions(c, user.ID, "", "user_deleted"); err != nil {
		a.writeStoreError(c, err)
		return
	}
	err := a.store.InTx(ctx, func(ctx context.Context) error {
		if err := a.store.DeleteUser(ctx, user.ID); err != nil {
			return err
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, "user.deleted", user.ID, map[string]any{"username": user.Username}))
	})
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (a *API) listUserRoles(c *gin.Context) {
	user, ok := a.userParam(c)
	if !ok {
		return
	}
	roles, err := a.store.UserRoles(c.Request.Context(), user.ID)
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": toRolesJSON(roles)})
}

func (a *API) assignRole(c *gin.Context) { a.changeRole(c, true) }
func (a *API) removeRole(c *gin.Context) { a.changeRole(c, false) }

func (a *API) changeRole(c *gin.Context, assign bool) {
	user, ok := a.userParam(c)
	if !ok {
		return
	}
	role, err := a.store.GetRole(c.Request.Context(), c.Param("role"))
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	if !covers(c, role.Permissions) || !a.requireCovers(c, user) {
		if !c.IsAborted() {
			writeProblem(c, http.StatusForbidden, "Forbidden", "This role grants permissions you do not hold.")
		}
		return
	}
	action := "role.removed"
	if assign {
		action = "role.assigned"
	}
	err = a.store.InTx(c.Request.Context(), func(ctx context.Context) error {
		change := a.store.RemoveRole
		if assign {
			change = a.store.AssignRole
		}
		if err := change(ctx, user.ID, role.ID); err != nil {
			return err
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, action, user.ID, map[string]any{"role": role.Name}))
	})
	if errors.Is(err, fosite.ErrNotFound) {
		writeProblem(c, http.StatusNotFound, "Not found", "The user does not have this role.")
		return
	}
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
