package storage

import "context"

// RevokeSessionTokens ends the grants issued under one login session: its
// refresh tokens become inactive and its access token records are deleted.
func (s *Store) RevokeSessionTokens(ctx context.Context, sessionID string) error {
	if sessionID == "" {
		return nil
	}
	db := s.db(ctx)
	if err := db.Table(tableRefreshTokens).Where("session_id = ?", sessionID).Update("active", false).Error; err != nil {
		return translate(err)
	}
	if err := db.Table(tableAccessTokens).Where("session_id = ?", sessionID).Delete(&requestRow{}).Error; err != nil {
		return translate(err)
	}
	return translate(db.Table(tableAuthorizeCodes).Where("session_id = ?", sessionID).Update("active", false).Error)
}
