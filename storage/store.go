package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
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
	database *Database
	base     *gorm.DB
	clients  *clientCache
	// auditKey keys the audit log's hash chain; nil means plain SHA-256.
	auditKey []byte
}

// SetAuditKey keys the audit log's hash chain with HMAC-SHA256, so that
// someone who can write to the database but does not know the key cannot
// rewrite events and recompute the chain. Every process that writes or
// verifies the log must use the same key.
func (s *Store) SetAuditKey(key []byte) {
	s.auditKey = key
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
	return &Store{database: d, base: d.DB, clients: newClientCache()}
}

type txKey struct{}

// nestedTxKey marks a context whose BeginTX found a transaction already
// open. Commit and Rollback on it do nothing: the outermost caller ends the
// transaction.
type nestedTxKey struct{}

// db returns the transaction carried by ctx, or the pool.
func (s *Store) db(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx
	}
	return s.base.WithContext(ctx)
}

func inTransaction(ctx context.Context) bool {
	_, ok := ctx.Value(txKey{}).(*gorm.DB)
	return ok
}

// BeginTX starts a transaction and returns a context that carries it. On a
// context that already carries one it starts nothing, and the Commit or
// Rollback of the returned context is left to the outer caller, so that an
// outer transaction spans fosite's inner ones.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if inTransaction(ctx) {
		return context.WithValue(ctx, nestedTxKey{}, true), nil
	}
	tx := s.base.WithContext(ctx).Begin()
	if tx.Error != nil {
		return ctx, translate(tx.Error)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

func isNested(ctx context.Context) bool {
	nested, _ := ctx.Value(nestedTxKey{}).(bool)
	return nested
}

// Commit commits the transaction carried by ctx, unless ctx came from a
// nested BeginTX.
func (s *Store) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("commit: no transaction in context")
	}
	if isNested(ctx) {
		return nil
	}
	return translate(tx.Commit().Error)
}

// Rollback aborts the transaction carried by ctx, unless ctx came from a
// nested BeginTX. The outer caller then sees the inner error and rolls back
// itself.
func (s *Store) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("rollback: no transaction in context")
	}
	if isNested(ctx) {
		return nil
	}
	return translate(tx.Rollback().Error)
}

// Ready checks that the database responds and that its schema is the one
// this binary needs.
func (s *Store) Ready(ctx context.Context) error {
	sqlDB, err := s.base.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return errors.Join(ErrUnavailable, err)
	}
	status, err := s.database.SchemaStatus(ctx)
	if err != nil {
		return errors.Join(ErrUnavailable, err)
	}
	if !status.UpToDate() {
		return fmt.Errorf("database schema is at version %d, this binary needs %d", status.Current, status.Latest)
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

	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return errors.Join(ErrConflict, err)
		case pgErr.Code == "40001" || pgErr.Code == "40P01":
			return errors.Join(fosite.ErrSerializationFailure, err)
		case pgErr.Code == "22P02":
			// A malformed value for a typed column, such as a user id that
			// is not a UUID, cannot match any row.
			return fosite.ErrNotFound
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "57P"):
			return errors.Join(ErrUnavailable, err)
		}
		return err
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.Join(ErrUnavailable, err)
	}

	message := err.Error()
	switch {
	case strings.Contains(message, "UNIQUE constraint failed"), strings.Contains(message, "SQLSTATE 23505"):
		return errors.Join(ErrConflict, err)
	case strings.Contains(message, "database is locked"), strings.Contains(message, "SQLITE_BUSY"),
		strings.Contains(message, "SQLSTATE 40001"):
		return errors.Join(fosite.ErrSerializationFailure, err)
	case strings.Contains(message, "connection refused"), strings.Contains(message, "sql: database is closed"),
		strings.Contains(message, "bad connection"), strings.Contains(message, "failed to connect"),
		strings.Contains(message, "conn closed"):
		return errors.Join(ErrUnavailable, err)
	}
	return err
}
