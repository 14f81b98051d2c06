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
	"gorm.io/driver/postgres"
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

// IsPostgres reports whether databaseURL names a PostgreSQL database.
func IsPostgres(databaseURL string) bool {
	return strings.HasPrefix(databaseURL, "postgres://") || strings.HasPrefix(databaseURL, "postgresql://")
}

// gormConfig is shared by both dialects: no logging of SQL (statements
// carry token signatures), no implicit transaction around single writes,
// and UTC timestamps.
func gormConfig() *gorm.Config {
	return &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
}

// Open connects to databaseURL: a postgres:// or postgresql:// URL opens
// PostgreSQL. A URL that starts with "sqlite:" or "file:", or a plain file
// path, opens SQLite in write-ahead-log mode with a busy timeout and
// immediate write transactions, so that concurrent writers queue rather
// than fail. Open fails with ErrUnavailable when the server does not respond.
func Open(ctx context.Context, databaseURL string) (*Database, error) {
	if databaseURL == "" {
		return nil, errors.New("missing database URL")
	}
	if IsPostgres(databaseURL) {
		return openPostgres(ctx, databaseURL)
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

	db, err := gorm.Open(sqlite.Open(dsn), gormConfig())
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

// Pool limits for PostgreSQL. Each replica keeps at most
// postgresMaxOpenConns connections, so that several replicas fit within
// PostgreSQL's default max_connections of 100.
const (
	postgresMaxOpenConns = 20
	postgresMaxIdleConns = 10
)

func openPostgres(ctx context.Context, databaseURL string) (*Database, error) {
	db, err := gorm.Open(postgres.Open(databaseURL), gormConfig())
	if err != nil {
		return nil, fmt.Errorf("%w: open PostgreSQL database: %v", ErrUnavailable, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(postgresMaxOpenConns)
	sqlDB.SetMaxIdleConns(postgresMaxIdleConns)
	sqlDB.SetConnMaxLifetime(30 * time.Minute)

	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("%w: PostgreSQL does not respond: %v", ErrUnavailable, err)
	}
	return &Database{DB: db, Dialect: "postgres"}, nil
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
