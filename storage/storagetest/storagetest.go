// Package storagetest gives tests a fresh, migrated database and session
// store on the backend chosen by LATCHKEY_TEST_BACKEND:
//
//	sqlite (default)  a SQLite file in the test's temporary folder, and memory sessions
//	postgres          a new PostgreSQL database latchkey_test_<random>, dropped afterwards,
//	                  and Redis sessions under a random key prefix, deleted afterwards
//
// The servers are found at LATCHKEY_TEST_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) and
// LATCHKEY_TEST_REDIS_URL (default redis://127.0.0.1:6379/0). On the
// postgres backend an unreachable server fails the test instead of skipping
// it, so a CI run cannot pass without having used them.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"

	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/storage"
)

// Backend names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Backend returns the backend the tests run on.
func Backend() string {
	if os.Getenv("LATCHKEY_TEST_BACKEND") == Postgres {
		return Postgres
	}
	return SQLite
}

func postgresAdminURL() string {
	if value := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); value != "" {
		return value
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisURL returns the Redis server the postgres backend uses.
func RedisURL() string {
	if value := os.Getenv("LATCHKEY_TEST_REDIS_URL"); value != "" {
		return value
	}
	return "redis://127.0.0.1:6379/0"
}

// DatabaseURL creates an empty database on the chosen backend, dropped when
// the test ends, and returns its URL. Nothing is migrated.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	if Backend() == SQLite {
		return filepath.Join(t.TempDir(), "latchkey.db")
	}
	return NewPostgresDatabase(t)
}

// NewPostgresDatabase creates an empty PostgreSQL database, dropped when the
// test ends, and returns its URL.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	adminURL := postgresAdminURL()
	admin, err := sql.Open("pgx", adminURL)
	if err != nil {
		t.Fatalf("open PostgreSQL admin connection: %v", err)
	}
	t.Cleanup(func() { admin.Close() })

	name := "latchkey_test_" + strings.ToLower(rand.Text()[:16])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database on %s (is PostgreSQL running? see the README): %v", redactURL(adminURL), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})

	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewDatabase returns an open, migrated database on the chosen backend.
func NewDatabase(t testing.TB) *storage.Database {
	t.Helper()
	return NewDatabaseOn(t, Backend())
}

// NewDatabaseOn returns an open, migrated database on backend, SQLite or
// Postgres, whatever LATCHKEY_TEST_BACKEND selects.
func NewDatabaseOn(t testing.TB, backend string) *storage.Database {
	t.Helper()
	ctx := context.Background()
	databaseURL := filepath.Join(t.TempDir(), "latchkey.db")
	if backend == Postgres {
		databaseURL = NewPostgresDatabase(t)
	}
	db, err := storage.Open(ctx, databaseURL)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return db
}

// SessionStore is the login-session store interface of the provider and the session contract suite.
type SessionStore interface {
	Create(ctx context.Context, session *storage.LoginSession) error
	Get(ctx context.Context, id string) (*storage.LoginSession, error)
	Touch(ctx context.Context, id string) error
	ListByUser(ctx context.Context, userID string) ([]*storage.LoginSession, error)
	Delete(ctx context.Context, id string) error
	DeleteByUser(ctx context.Context, userID string) error
	AddClient(ctx context.Context, id, clientID string) error
	Stats(ctx context.Context) (*storage.SessionStats, error)
	SetClock(now func() time.Time)
	Elevate(ctx context.Context, id string, amr []string, authTime time.Time) error
}

// NewSessionStore returns an empty session store on the chosen backend.
func NewSessionStore(t testing.TB) SessionStore {
	t.Helper()
	if Backend() == SQLite {
		return storage.NewMemorySessionStore()
	}
	return NewRedisSessionStore(t, RedisURL())
}

// NewRedisSessionStore returns a Redis session store at redisURL under a
// random key prefix whose keys are deleted when the test ends.
func NewRedisSessionStore(t testing.TB, redisURL string) *storage.RedisSessionStore {
	t.Helper()
	client, err := storage.OpenRedis(context.Background(), redisURL)
	if err != nil {
		t.Fatalf("connect to Redis at %s (is it running? see the README): %v", redisURL, err)
	}
	prefix := "latchkey_test_" + rand.Text()[:12] + ":"
	t.Cleanup(func() {
		deleteKeys(client, prefix)
		client.Close()
	})
	return storage.NewRedisSessionStore(client, prefix)
}

func deleteKeys(client *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		client.Del(ctx, iter.Val())
	}
}

// redactURL drops the password from a URL before it is printed.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
