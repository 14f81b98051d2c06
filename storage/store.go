package storage

import (
	"context"
	"errors"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"
	"gorm.io/gorm"
)

// ErrConflict is returned when an insert collides with an existing row.
var ErrConflict = errors.New("already exists")

// Store is the SQL-backed store behind the provider.
type Store struct {
	base    *gorm.DB
	clients *clientCache
}

var (
	_ fosite.Storage                     = (*Store)(nil)
	_ oauth2.CoreStorage                 = (*Store)(nil)
	_ oauth2.TokenRevocationStorage      = (*Store)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Store)(nil)
	_ pkce.PKCERequestStorage            = (*Store)(nil)
	_ fositestorage.Transactional        = (*Store)(nil)
)

// NewStore returns a store over an open, migrated database.
func NewStore(d *Database) *Store {
	return &Store{base: d.DB, clients: newClientCache()}
}

type txKey struct{}

// db returns the transaction carried by ctx, or the pool.
func (s *Store) db(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx
	}
	return s.base.WithContext(ctx)
}

// BeginTX starts a transaction and returns a context that carries it. A
// context that already carries one is returned unchanged, so that an outer
// transaction spans fosite's inner ones.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return ctx, nil
	}
	tx := s.base.WithContext(ctx).Begin()
	if tx.Error != nil {
		return ctx, translate(tx.Error)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// Commit commits the transaction carried by ctx.
func (s *Store) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("commit: no transaction in context")
	}
	return translate(tx.Commit().Error)
}

// Rollback aborts the transaction carried by ctx.
func (s *Store) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("rollback: no transaction in context")
	}
	return translate(tx.Rollback().Error)
}

// Ping checks that the database responds.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.base.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return errors.Join(ErrUnavailable, err)
	}
	return nil
}

// translate maps driver errors to the sentinels callers check with
// errors.Is.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fosite.ErrNotFound
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return errors.Join(ErrConflict, err)
	}

	message := err.Error()
	switch {
	case strings.Contains(message, "UNIQUE constraint failed"), strings.Contains(message, "SQLSTATE 23505"):
		return errors.Join(ErrConflict, err)
	case strings.Contains(message, "database is locked"), strings.Contains(message, "SQLITE_BUSY"),
		strings.Contains(message, "SQLSTATE 40001"):
		return errors.Join(fosite.ErrSerializationFailure, err)
	case strings.Contains(message, "connection refused"), strings.Contains(message, "sql: database is closed"),
		strings.Contains(message, "bad connection"):
		return errors.Join(ErrUnavailable, err)
	}
	return err
}
