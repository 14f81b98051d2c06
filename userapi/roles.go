package userapi

import (
	"context"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/latchkey/latchkey/storage"
)

type roleJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Permissions []string  `json:"permissions"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toRoleJSON(r *storage.Role) roleJSON {
	return roleJSON{ID: r.ID, Name: r.Name, Description: r.Description, Permissions: r.Permissions,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func toRolesJSON(roles []*storage.Role) []roleJSON {
	items := make([]roleJSON, 0, len(roles))
	for _, role := range roles {
		items = append(items, toRoleJSON(role))
	}
	return items
}

// Names of roles and permissions: lower-case words joined by '-', '_', '.'
// or ':', up to 64 characters, such as "audit:read".
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)

type roleBody struct {
	Name        *string   `json:"name"`
	Description *string   `json:"description"`
	Permissions *[]string `json:"permissions"`
}

func (b *roleBody) apply(role *storage.Role, errs *fieldErrors) {
	if b.Name != nil {
		if !namePattern.MatchString(*b.Name) {
			errs.add("name", "must be 1 to 64 lower-case letters, digits and . _ : -")
		} else {
			role.Name = *b.Name
		}
	}
	if b.Description != nil {
		if len(*b.Description) > 500 {
			errs.add("description", "is too long")
		} else {
			role.Description = *b.Description
		}
	}
	if b.Permissions != nil {
		for _, permission := range *b.Permissions {
			if !namePattern.MatchString(permission) {
				errs.add("permissions", "invalid permission "+permission)
			}
		}
		role.Permissions = *b.Permissions
	}
}

func (a *API) listRoles(c *gin.Context) {
	roles, err := a.store.ListRoles(c.Request.Context())
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": toRolesJSON(roles)})
}

func (a *API) getRole(c *gin.Context) {
	role, err := a.store.GetRole(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, toRoleJSON(role))
}

func (a *API) createRole(c *gin.Context) {
	var body roleBody
	if !decodeJSON(c, &body) {
		return
	}
	var errs fieldErrors
	if body.Name == nil {
		errs.add("name", "is required")
	}
	role := &storage.Role{Permissions: []string{}}
	body.apply(role, &errs)
	if len(errs) == 0 && !covers(c, role.Permissions) {
		errs.add("permissions", "includes permissions you do not hold")
	}
	if errs.write(c) {
		return
	}
	err := a.store.InTx(c.Request.Context(), func(ctx context.Context) error {
		if err := a.store.CreateRole(ctx, role); err != nil {
			return err
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, "role.created", role.ID,
			map[string]any{"name": role.Name, "permissions": role.Permissions}))
	})
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusCreated, toRoleJSON(role))
}

func (a *API) patchRole(c *gin.Context) {
	role, err := a.store.GetRole(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	if !a.requireCoversHolders(c, role) {
		return
	}

	var body roleBody
	if !decodeJSON(c, &body) {
		return
	}
	var errs fieldErrors
	oldName := role.Name
	body.apply(role, &errs)
	if builtInRole(oldName) && role.Name != oldName {
		errs.add("name", "the built-in roles admin and user cannot be renamed")
	}
	if len(errs) == 0 && !covers(c, role.Permissions) {
		errs.add("permissions", "includes permissions you do not hold")
	}
	if errs.write(c) {
		return
	}

	err = a.store.InTx(c.Request.Context(), func(ctx context.Context) error {
		if err := a.store.UpdateRole(ctx, role); err != nil {
			return err
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, "role.updated", role.ID,
			map[string]any{"name": role.Name, "permissions": role.Permissions}))
	})
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, toRoleJSON(role))
}

func (a *API) deleteRole(c *gin.Context) {
	role, err := a.store.GetRole(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	if builtInRole(role.Name) {
		writeProblem(c, http.StatusConflict, "Conflict", "The built-in roles admin and user cannot be deleted.")
		return
	}
	if !a.requireCoversHolders(c, role) {
		return
	}
	err = a.store.InTx(c.Request.Context(), func(ctx context.Context) error {
		if err := a.store.DeleteRole(ctx, role.ID); err != nil {
			return err
		}
		return a.store.AppendAuditEvent(ctx, auditEvent(c, "role.deleted", role.ID, map[string]any{"name": role.Name}))
	})
	if err != nil {
		a.writeStoreError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// builtInRole reports whether a role name is one every database starts
// with. Those roles keep their names, because the CLI and the docs rely on
// them.
func builtInRole(name string) bool {
	return name == storage.RoleAdmin || name == storage.RoleUser
}
