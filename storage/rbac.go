package storage

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"gorm.io/gorm/clause"
)

// Built-in permissions. Operators may define others: a permission is any
// string a role lists.
const (
	PermissionUsersRead     = "users:read"
	PermissionUsersWrite    = "users:write"
	PermissionRolesWrite    = "roles:write"
	PermissionAuditRead     = "audit:read"
	PermissionSessionsAdmin = "sessions:admin"
	PermissionClientsWrite  = "clients:write"
)

// Names of the roles every database starts with.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Role groups permissions under a name.
type Role struct {
	ID          string
	Name        string
	Description string
	Permissions []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

type roleRow struct {
	ID          string `gorm:"primaryKey"`
	Name        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (roleRow) TableName() string { return "roles" }

type rolePermissionRow struct {
	RoleID     string `gorm:"primaryKey"`
	Permission string `gorm:"primaryKey"`
}

func (rolePermissionRow) TableName() string { return "role_permissions" }

type userRoleRow struct {
	UserID string `gorm:"primaryKey"`
	RoleID string `gorm:"primaryKey"`
}

func (userRoleRow) TableName() string { return "user_roles" }

// CreateRole inserts a role with its permissions. A taken name returns
// ErrConflict.
func (s *Store) CreateRole(ctx context.Context, role *Role) error {
	if role.ID == "" {
		role.ID = uuid.NewString()
	}
	now := time.Now().UTC().Truncate(time.Second)
	role.CreatedAt, role.UpdatedAt = now, now
	return s.InTx(ctx, func(ctx context.Context) error {
		row := roleRow{ID: role.ID, Name: role.Name, Description: role.Description, CreatedAt: now, UpdatedAt: now}
		if err := s.db(ctx).Create(&row).Error; err != nil {
			return translate(err)
		}
		return s.setPermissions(ctx, role.ID, role.Permissions)
	})
}

func (s *Store) setPermissions(ctx context.Context, roleID string, permissions []string) error {
	db := s.db(ctx)
	if err := db.Where("role_id = ?", roleID).Delete(&rolePermissionRow{}).Error; err != nil {
		return translate(err)
	}
	slices.Sort(permissions)
	permissions = slices.Compact(permissions)
	rows := make([]rolePermissionRow, 0, len(permissions))
	for _, permission := range permissions {
		rows = append(rows, rolePermissionRow{RoleID: roleID, Permission: permission})
	}
	if len(rows) == 0 {
		return nil
	}
	return translate(db.Create(&rows).Error)
}

// UpdateRole replaces a role's name, description and permissions.
func (s *Store) UpdateRole(ctx context.Context, role *Role) error {
	role.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	return s.InTx(ctx, func(ctx context.Context) error {
		result := s.db(ctx).Model(&roleRow{}).Where("id = ?", role.ID).
			Updates(map[string]any{"name": role.Name, "description": role.Description, "updated_at": role.UpdatedAt})
		if result.Error != nil {
			return translate(result.Error)
		}
		if result.RowsAffected == 0 {
			return fosite.ErrNotFound
		}
		return s.setPermissions(ctx, role.ID, role.Permissions)
	})
}

// DeleteRole removes a role and its assignments.
func (s *Store) DeleteRole(ctx context.Context, id string) error {
	result := s.db(ctx).Where("id = ?", id).Delete(&roleRow{})
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// GetRole loads a role by id, or by name. An id is tried first only when
// idOrName is a UUID, because PostgreSQL rejects other strings for a UUID
// column and that would abort a surrounding transaction.
func (s *Store) GetRole(ctx context.Context, idOrName string) (*Role, error) {
	var row roleRow
	var err error = fosite.ErrNotFound
	if _, parseErr := uuid.Parse(idOrName); parseErr == nil {
		err = translate(s.db(ctx).Where("id = ?", idOrName).Take(&row).Error)
	}
	if errors.Is(err, fosite.ErrNotFound) {
		err = translate(s.db(ctx).Where("name = ?", idOrName).Take(&row).Error)
	}
	if err != nil {
		return nil, err
	}
	roles, err := s.withPermissions(ctx, []roleRow{row})
	if err != nil {
		return nil, err
	}
	return roles[0], nil
}

// ListRoles returns every role by name.
func (s *Store) ListRoles(ctx context.Context) ([]*Role, error) {
	var rows []roleRow
	if err := s.db(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return s.withPermissions(ctx, rows)
}

func (s *Store) withPermissions(ctx context.Context, rows []roleRow) ([]*Role, error) {
	roles := make([]*Role, 0, len(rows))
	ids := make([]string, 0, len(rows))
	byID := map[string]*Role{}
	for _, row := range rows {
		role := &Role{ID: row.ID, Name: row.Name, Description: row.Description, Permissions: []string{},
			CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}
		roles = append(roles, role)
		ids = append(ids, row.ID)
		byID[row.ID] = role
	}
	if len(ids) == 0 {
		return roles, nil
	}
	var permissions []rolePermissionRow
	if err := s.db(ctx).Where("role_id IN ?", ids).Order("permission").Find(&permissions).Error; err != nil {
		return nil, translate(err)
	}
	for _, p := range permissions {
		byID[p.RoleID].Permissions = append(byID[p.RoleID].Permissions, p.Permission)
	}
	return roles, nil
}

// AssignRole gives a user a role; assigning it twice is not an error.
func (s *Store) AssignRole(ctx context.Context, userID, roleID string) error {
	row := userRoleRow{UserID: userID, RoleID: roleID}
	return translate(s.db(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error)
}

// RemoveRole takes a role from a user; it returns fosite.ErrNotFound when
// the user did not have it.
func (s *Store) RemoveRole(ctx context.Context, userID, roleID string) error {
	result := s.db(ctx).Where("user_id = ? AND role_id = ?", userID, roleID).Delete(&userRoleRow{})
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// UserRoles returns the roles of a user by name.
func (s *Store) UserRoles(ctx context.Context, userID string) ([]*Role, error) {
	var rows []roleRow
	err := s.db(ctx).Joins("JOIN user_roles ON user_roles.role_id = roles.id").
		Where("user_roles.user_id = ?", userID).Order("roles.name").Find(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	return s.withPermissions(ctx, rows)
}

// UserPermissions returns the sorted union of the permissions of a user's
// roles, read from the database on every call so that a removed role stops
// granting at once.
func (s *Store) UserPermissions(ctx context.Context, userID string) ([]string, error) {
	var permissions []string
	err := s.db(ctx).Table("role_permissions").Distinct("role_permissions.permission").
		Joins("JOIN user_roles ON user_roles.role_id = role_permissions.role_id").
		Where("user_roles.user_id = ?", userID).Order("role_permissions.permission").
		Pluck("role_permissions.permission", &permissions).Error
	if err != nil {
		return nil, translate(err)
	}
	return permissions, nil
}

// InTx runs fn in a transaction, committed when fn returns nil and rolled
// back otherwise. Inside a transaction already, fn joins it.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	if err := fn(txCtx); err != nil {
		_ = s.Rollback(txCtx)
		return err
	}
	return s.Commit(txCtx)
}

// RoleHolderPermissions returns the union of the permissions of every user
// who holds the role, through any of their roles.
func (s *Store) RoleHolderPermissions(ctx context.Context, roleID string) ([]string, error) {
	var permissions []string
	err := s.db(ctx).Table("role_permissions").Distinct("role_permissions.permission").
		Joins("JOIN user_roles ON user_roles.role_id = role_permissions.role_id").
		Where("user_roles.user_id IN (SELECT user_id FROM user_roles WHERE role_id = ?)", roleID).
		Pluck("role_permissions.permission", &permissions).Error
	return permissions, translate(err)
}
