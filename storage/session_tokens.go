package storage

import "context"

// RevokeSessionTokens ends the grants issued under one login session: its
// refresh and access token records are deleted and its unused codes
// invalidated.
func (s *Store) RevokeSessionTokens(ctx context.Context, sessionID string) error {
	if sessionID == "" {
		return nil
	}
	db := s.db(ctx)
	// Deleted, not marked inactive: a later use of an inactive refresh token
	// would be reported as token theft.
	if err := db.Table(tableRefreshTokens).Where("session_id = ?", sessionID).Delete(&requestRow{}).Error; err != nil {
		return translate(err)
	}
	if err := db.Table(tableAccessTokens).Where("session_id = ?", sessionID).Delete(&requestRow{}).Error; err != nil {
		return translate(err)
	}
	return translate(db.Table(tableAuthorizeCodes).Where("session_id = ?", sessionID).Update("active", false).Error)
}
