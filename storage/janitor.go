package storage

import (
	"context"
	"fmt"
	"time"
)

// expiringTables lists the tables whose rows die at expires_at, with their
// primary key. A spent refresh token is kept until it expires, so that its
// reuse is still detected until then.
var expiringTables = []struct{ table, key string }{
	{tableAuthorizeCodes, "signature"},
	{tableOIDCSessions, "signature"},
	{tablePKCESessions, "signature"},
	{tableAccessTokens, "signature"},
	{tableRefreshTokens, "signature"},
	{"oauth2_client_assertion_jti", "jti"},
	{"mfa_challenges", "id"},
}

// DefaultCleanupBatch is how many rows one DELETE removes. Small batches
// keep each statement's locks short, so that cleanup of a large table
// never stalls the token endpoint.
const DefaultCleanupBatch = 500

// DeleteExpired deletes every record that expired before now, batchSize
// rows per statement, and returns how many rows it deleted per table.
// Retired signing keys whose publication window has ended go as well.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time, batchSize int) (map[string]int64, error) {
	if batchSize <= 0 {
		batchSize = DefaultCleanupBatch
	}
	deleted := map[string]int64{}
	now = now.UTC()

	for _, t := range expiringTables {
		query := fmt.Sprintf("DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE expires_at < ? LIMIT ?)", t.table, t.key)
		for {
			if err := ctx.Err(); err != nil {
				return deleted, err
			}
			result := s.base.WithContext(ctx).Exec(query, now, batchSize)
			if result.Error != nil {
				return deleted, fmt.Errorf("delete expired rows of %s: %w", t.table, translate(result.Error))
			}
			deleted[t.table] += result.RowsAffected
			if result.RowsAffected < int64(batchSize) {
				break
			}
		}
	}

	result := s.base.WithContext(ctx).Exec(
		"DELETE FROM signing_keys WHERE active = ? AND publish_until IS NOT NULL AND publish_until < ?", false, now)
	if result.Error != nil {
		return deleted, fmt.Errorf("delete retired signing keys: %w", translate(result.Error))
	}
	deleted["signing_keys"] = result.RowsAffected
	return deleted, nil
}
