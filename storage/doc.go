// Package storage owns Latchkey's durable state and its login sessions.
//
// Durable state (clients, users, signing keys, consents and every fosite
// token record) lives in a SQL database reached through gorm: SQLite as the
// embedded default, PostgreSQL in production. Store implements fosite's
// storage interfaces, including Transactional, so that the code exchange
// and refresh-token rotation are atomic.
//
// Login sessions live in a SessionStore; MemorySessionStore is the embedded
// default.
//
// Row structs are unexported: callers see the domain types Client, User,
// SigningKey and LoginSession, and the sentinel errors of this package and
// of fosite (fosite.ErrNotFound, fosite.ErrInvalidatedAuthorizeCode,
// fosite.ErrInactiveToken, fosite.ErrSerializationFailure).
package storage
