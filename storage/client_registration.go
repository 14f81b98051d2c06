package storage

import (
	"context"

	"github.com/ory/fosite"
)

// UpdateClient replaces every stored field of the client with c.ID except
// its creation time, and drops the client from this Store's cache so the
// change takes effect at once here. Other processes may serve the old
// client from their caches for up to clientCacheTTL. It returns
// fosite.ErrNotFound when no such client exists.
func (s *Store) UpdateClient(ctx context.Context, c *Client) error {
	s.clients.remove(c.ID)
	// A read between the remove above and the update below could cache the
	// old client again, so the entry is dropped a second time afterwards.
	defer s.clients.remove(c.ID)

	row := clientToRow(c)
	result := s.db(ctx).Model(&clientRow{}).Where("id = ?", c.ID).
		Select("*").Omit("id", "created_at").Updates(row)
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}
