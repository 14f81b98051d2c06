// Package migrations embeds Latchkey's SQL schema migrations, one folder per
// SQL dialect, and applies them with goose. Files are numbered and
// append-only: a released migration is never edited, a change is a new file.
//
// storage.Open connects to the database. This package only changes its schema.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Status is the schema version of a database next to the newest version
// this binary ships.
type Status struct {
	Current int64
	Latest  int64
}

// UpToDate reports whether every shipped migration has been applied.
func (s Status) UpToDate() bool { return s.Current >= s.Latest }

func newProvider(db *sql.DB, dialect string) (*goose.Provider, error) {
	var gooseDialect goose.Dialect
	switch dialect {
	case "sqlite":
		gooseDialect = goose.DialectSQLite3
	case "postgres":
		gooseDialect = goose.DialectPostgres
	default:
		return nil, fmt.Errorf("no migrations for SQL dialect %q", dialect)
	}

	dir, err := fs.Sub(files, dialect)
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(gooseDialect, db, dir)
}

// Up applies every pending migration, each in its own transaction, and
// returns the resulting status.
func Up(ctx context.Context, db *sql.DB, dialect string) (Status, error) {
	provider, err := newProvider(db, dialect)
	if err != nil {
		return Status{}, err
	}
	if _, err := provider.Up(ctx); err != nil {
		return Status{}, fmt.Errorf("apply migrations: %w", err)
	}
	return status(ctx, provider)
}

// CurrentStatus returns the applied and the newest shipped schema version
// without changing anything.
func CurrentStatus(ctx context.Context, db *sql.DB, dialect string) (Status, error) {
	provider, err := newProvider(db, dialect)
	if err != nil {
		return Status{}, err
	}
	return status(ctx, provider)
}

func status(ctx context.Context, provider *goose.Provider) (Status, error) {
	current, err := provider.GetDBVersion(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("read schema version: %w", err)
	}

	sources := provider.ListSources()
	var latest int64
	if len(sources) > 0 {
		latest = sources[len(sources)-1].Version
	}
	return Status{Current: current, Latest: latest}, nil
}
