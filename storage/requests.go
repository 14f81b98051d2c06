package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// The tables that hold fosite request records, one per token kind. Each row
// is keyed by the token's signature (the HMAC part of an opaque token, or the
// JWS signature of a JWT access token), never by the token itself.
const (
	tableAuthorizeCodes = "oauth2_authorize_codes"
	tableAccessTokens   = "oauth2_access_tokens"
	tableRefreshTokens  = "oauth2_refresh_tokens"
	tableOIDCSessions   = "oauth2_oidc_sessions"
	tablePKCESessions   = "oauth2_pkce_sessions"
)

// fallbackLifetime bounds a record whose session carries no expiry, such as
// a refresh token configured never to expire, so that cleanup can still
// remove it eventually.
const fallbackLifetime = 365 * 24 * time.Hour

// LoginSessionCarrier is implemented by fosite sessions that know the login
// session (the OpenID Connect "sid") they were issued under. Records keep it
// so that ending a login session can revoke its tokens.
type LoginSessionCarrier interface {
	GetLoginSessionID() string
}

type requestRow struct {
	Signature       string `gorm:"primaryKey"`
	RequestID       string
	ClientID        string
	Subject         string
	SessionID       string
	RequestedAt     time.Time
	Scopes          string
	GrantedScopes   string
	Audience        string
	GrantedAudience string
	Form            string
	SessionData     string
	Active          bool
	ExpiresAt       time.Time
}

type refreshRow struct {
	Request         requestRow `gorm:"embedded"`
	AccessSignature string
}

func newRequestRow(signature string, r fosite.Requester, expiryKind fosite.TokenType) (*requestRow, error) {
	session := r.GetSession()
	data, err := json.Marshal(session)
	if err != nil {
		return nil, fmt.Errorf("encode session: %w", err)
	}

	row := &requestRow{
		Signature:       signature,
		RequestID:       r.GetID(),
		ClientID:        r.GetClient().GetID(),
		RequestedAt:     r.GetRequestedAt().UTC(),
		Scopes:          strings.Join(r.GetRequestedScopes(), " "),
		GrantedScopes:   strings.Join(r.GetGrantedScopes(), " "),
		Audience:        encodeList(r.GetRequestedAudience()),
		GrantedAudience: encodeList(r.GetGrantedAudience()),
		Form:            r.GetRequestForm().Encode(),
		SessionData:     string(data),
		Active:          true,
	}
	if session != nil {
		row.Subject = session.GetSubject()
		row.ExpiresAt = session.GetExpiresAt(expiryKind).UTC()
		if carrier, ok := session.(LoginSessionCarrier); ok {
			row.SessionID = carrier.GetLoginSessionID()
		}
	}
	if row.ExpiresAt.IsZero() {
		row.ExpiresAt = time.Now().UTC().Add(fallbackLifetime)
	}
	return row, nil
}

// toRequest rebuilds the fosite request of a row. The stored session is
// decoded into session, which the caller supplies with the right type. A nil
// session leaves the request without one.
func (s *Store) toRequest(ctx context.Context, row *requestRow, session fosite.Session) (*fosite.Request, error) {
	client, err := s.GetClient(ctx, row.ClientID)
	if err != nil {
		return nil, err
	}
	if session != nil {
		if err := json.Unmarshal([]byte(row.SessionData), session); err != nil {
			return nil, fmt.Errorf("decode stored session: %w", err)
		}
	}

	form, err := url.ParseQuery(row.Form)
	if err != nil {
		return nil, fmt.Errorf("decode stored form: %w", err)
	}
	return &fosite.Request{
		ID:                row.RequestID,
		RequestedAt:       row.RequestedAt,
		Client:            client,
		RequestedScope:    strings.Fields(row.Scopes),
		GrantedScope:      strings.Fields(row.GrantedScopes),
		RequestedAudience: decodeList(row.Audience),
		GrantedAudience:   decodeList(row.GrantedAudience),
		Form:              form,
		Session:           session,
	}, nil
}

func (s *Store) createRequest(ctx context.Context, table, signature string, r fosite.Requester, kind fosite.TokenType) error {
	row, err := newRequestRow(signature, r, kind)
	if err != nil {
		return err
	}
	return translate(s.db(ctx).Table(table).Create(row).Error)
}

func (s *Store) getRequest(ctx context.Context, table, signature string, session fosite.Session) (*requestRow, fosite.Requester, error) {
	var row requestRow
	if err := s.db(ctx).Table(table).Where("signature = ?", signature).Take(&row).Error; err != nil {
		return nil, nil, translate(err)
	}
	request, err := s.toRequest(ctx, &row, session)
	if err != nil {
		return nil, nil, err
	}
	return &row, request, nil
}

func (s *Store) deleteRequest(ctx context.Context, table, signature string) error {
	return translate(s.db(ctx).Table(table).Where("signature = ?", signature).Delete(&requestRow{}).Error)
}

// CreateAuthorizeCodeSession stores the request behind an authorization code.
func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, tableAuthorizeCodes, signature, r, fosite.AuthorizeCode)
}

// GetAuthorizeCodeSession returns the request behind a code. For a code that
// was already exchanged it returns the request together with
// fosite.ErrInvalidatedAuthorizeCode, so that fosite can revoke the tokens
// issued from it.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	row, request, err := s.getRequest(ctx, tableAuthorizeCodes, signature, session)
	if err != nil {
		return nil, err
	}
	if !row.Active {
		return request, fosite.ErrInvalidatedAuthorizeCode
	}
	return request, nil
}

// InvalidateAuthorizeCodeSession marks a code as used. Only one caller can
// win: a code that is already inactive returns ErrCodeAlreadyUsed.
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	result := s.db(ctx).Table(tableAuthorizeCodes).
		Where("signature = ? AND active = ?", signature, true).Update("active", false)
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return ErrCodeAlreadyUsed
	}
	return nil
}

// ErrCodeAlreadyUsed is returned when a concurrent request exchanged the
// same authorization code first.
var ErrCodeAlreadyUsed = fmt.Errorf("authorization code already used: %w", fosite.ErrInvalidatedAuthorizeCode)

// CreateAccessTokenSession records an issued access token.
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, tableAccessTokens, signature, r, fosite.AccessToken)
}

// GetAccessTokenSession returns the request behind an access token.
func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	_, request, err := s.getRequest(ctx, tableAccessTokens, signature, session)
	return request, err
}

// DeleteAccessTokenSession removes one access token record.
func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, tableAccessTokens, signature)
}

// CreateRefreshTokenSession records an issued refresh token and the access
// token issued with it.
func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	row, err := newRequestRow(signature, r, fosite.RefreshToken)
	if err != nil {
		return err
	}
	return translate(s.db(ctx).Table(tableRefreshTokens).Create(&refreshRow{Request: *row, AccessSignature: accessSignature}).Error)
}

// GetRefreshTokenSession returns the request behind a refresh token. For a
// rotated or revoked token it returns the request together with
// fosite.ErrInactiveToken, which fosite treats as reuse.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	row, request, err := s.getRequest(ctx, tableRefreshTokens, signature, session)
	if err != nil {
		return nil, err
	}
	if !row.Active {
		return request, fosite.ErrInactiveToken
	}
	return request, nil
}

// DeleteRefreshTokenSession removes one refresh token record.
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, tableRefreshTokens, signature)
}

// RotateRefreshToken marks a refresh token as spent and deletes the access
// tokens of its grant. The spent row stays, inactive, so that a later use of
// it is detected as reuse. Of two concurrent rotations of one token only the
// first succeeds. The other gets fosite.ErrSerializationFailure.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	db := s.db(ctx)
	result := db.Table(tableRefreshTokens).
		Where("signature = ? AND active = ?", signature, true).Update("active", false)
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return ErrRefreshTokenAlreadyRotated
	}
	return translate(db.Table(tableAccessTokens).Where("request_id = ?", requestID).Delete(&requestRow{}).Error)
}

// ErrRefreshTokenAlreadyRotated is returned when a concurrent request
// rotated the same refresh token first. It matches
// fosite.ErrSerializationFailure, which fosite turns into an error response.
var ErrRefreshTokenAlreadyRotated = fmt.Errorf("refresh token already rotated: %w", fosite.ErrSerializationFailure)

// RevokeRefreshToken marks every refresh token of a grant inactive.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return translate(s.db(ctx).Table(tableRefreshTokens).
		Where("request_id = ?", requestID).Update("active", false).Error)
}

// RevokeAccessToken deletes every access token of a grant.
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	return translate(s.db(ctx).Table(tableAccessTokens).
		Where("request_id = ?", requestID).Delete(&requestRow{}).Error)
}

// CreateOpenIDConnectSession stores the OpenID Connect part of an
// authorization request. fosite keys it by the raw authorization code, so
// the row is keyed by the code's SHA-256 hash instead: the database never
// contains a usable code.
func (s *Store) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.createRequest(ctx, tableOIDCSessions, hashKey(code), r, fosite.AuthorizeCode)
}

// GetOpenIDConnectSession returns the OpenID Connect request stored with a
// code. The session is decoded into the requester's session.
func (s *Store) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	_, request, err := s.getRequest(ctx, tableOIDCSessions, hashKey(code), r.GetSession())
	return request, err
}

// DeleteOpenIDConnectSession removes the OpenID Connect request of a code.
func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.deleteRequest(ctx, tableOIDCSessions, hashKey(code))
}

// hashKey returns the hex SHA-256 of a raw token, for tables fosite keys by
// the token itself rather than by its signature.
func hashKey(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// CreatePKCERequestSession stores the PKCE challenge of a code.
func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, tablePKCESessions, signature, r, fosite.AuthorizeCode)
}

// GetPKCERequestSession returns the request carrying a code's PKCE challenge.
func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	_, request, err := s.getRequest(ctx, tablePKCESessions, signature, session)
	return request, err
}

// DeletePKCERequestSession does nothing. fosite v0.49.0 deletes the PKCE
// record before it checks the verifier, so deleting here would let a retry
// without code_verifier pass after one failed attempt. The record is instead
// removed with its code when it expires, and a used code cannot be exchanged
// again anyway.
func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return nil
}
