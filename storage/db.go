package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/latchkey/latchkey/migrations"
)

// ErrUnavailable wraps a failure to reach the database, so that handlers can
// respond with 503 instead of 500.
var ErrUnavailable = errors.New("database unavailable")

// Database is an open connection pool and the SQL dialect behind it.
type Database struct {
	DB      *gorm.DB
	Dialect string
}

// SQLitePath returns the path of the embedded database inside dataDir.
func SQLitePath(dataDir string) string {
	return filepath.Join(dataDir, "latchkey.db")
}

// Open connects to databaseURL. A URL that starts with "sqlite:" or
// "file:", or a plain file path, opens SQLite in write-ahead-log mode with a
// busy timeout and immediate write transactions, so that concurrent writers
// queue rather than fail.
func Open(ctx context.Context, databaseURL string) (*Database, error) {
	switch {
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return nil, errors.New("PostgreSQL support is not built yet: use a SQLite path")
	case databaseURL == "":
		return nil, errors.New("missing database URL")
	}

	path := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database folder: %w", err)
	}
	dsn := "file:" + path +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate"

	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}

	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return &Database{DB: db, Dialect: "sqlite"}, nil
}

// Close closes the connection pool.
func (d *Database) Close() error {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Migrate applies every pending schema migration.
func (d *Database) Migrate(ctx context.Context) (migrations.Status, error) {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return migrations.Status{}, err
	}
	return migrations.Up(ctx, sqlDB, d.Dialect)
}

// SchemaStatus returns the applied and the newest known schema version.
func (d *Database) SchemaStatus(ctx context.Context) (migrations.Status, error) {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return migrations.Status{}, err
	}
	return migrations.CurrentStatus(ctx, sqlDB, d.Dialect)
}
