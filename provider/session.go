package provider

import (
	"time"

	"github.com/mohae/deepcopy"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/storage"
)

// Session is the fosite session of one grant. It carries the ID token
// claims (through the embedded DefaultSession) and what the access token
// needs beyond them. It is stored as JSON with every token record, so its
// fields are exported.
type Session struct {
	*openid.DefaultSession `json:"id_token"`

	ClientID       string    `json:"client_id"`
	LoginSessionID string    `json:"sid,omitempty"`
	AuthTime       time.Time `json:"auth_time,omitempty"`
	// AMR and ACR are how the person authenticated, as in the ID token.
	AMR    []string `json:"amr,omitempty"`
	ACR    string   `json:"acr,omitempty"`
	Issuer string   `json:"iss"`
	// Roles are the user's role names when the "roles" scope was granted,
	// as they were when the person consented.
	Roles []string `json:"roles"`
	// UserinfoClaims are the claims the claims request parameter asked
	// userinfo for, beyond those of the granted scopes.
	UserinfoClaims []string `json:"userinfo_claims,omitempty"`
}

var (
	_ openid.Session              = (*Session)(nil)
	_ oauth2.JWTSessionContainer  = (*Session)(nil)
	_ fosite.ExtraClaimsSession   = (*Session)(nil)
	_ storage.LoginSessionCarrier = (*Session)(nil)
)

// newSession returns an empty session, the shape storage decodes into.
func newSession() *Session {
	return &Session{DefaultSession: &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{},
		Headers: &jwt.Headers{},
	}}
}

// GetJWTClaims builds the access token claims (RFC 9068) afresh on every
// call, so that iat and jti are new on every refresh. fosite adds exp,
// scope, aud, iat and iss, and this method adds client_id, sid and auth_time.
func (s *Session) GetJWTClaims() jwt.JWTClaimsContainer {
	extra := map[string]interface{}{"client_id": s.ClientID}
	if s.LoginSessionID != "" {
		extra["sid"] = s.LoginSessionID
	}
	if !s.AuthTime.IsZero() {
		extra["auth_time"] = s.AuthTime.Unix()
	}
	if s.Roles != nil {
		extra["roles"] = s.Roles
	}
	if len(s.AMR) > 0 {
		extra["amr"] = s.AMR
	}
	if s.ACR != "" {
		extra["acr"] = s.ACR
	}
	return &jwt.JWTClaims{
		Subject: s.GetSubject(),
		Issuer:  s.Issuer,
		Extra:   extra,
	}
}

// GetJWTHeader returns the access token's header: typ at+jwt as RFC 9068
// requires. The signer adds kid.
func (s *Session) GetJWTHeader() *jwt.Headers {
	return &jwt.Headers{Extra: map[string]interface{}{"typ": "at+jwt"}}
}

// GetExtraClaims returns the claims introspection adds to its response.
func (s *Session) GetExtraClaims() map[string]interface{} {
	extra := map[string]interface{}{}
	if s.LoginSessionID != "" {
		extra["sid"] = s.LoginSessionID
	}
	if !s.AuthTime.IsZero() {
		extra["auth_time"] = s.AuthTime.Unix()
	}
	if s.Issuer != "" {
		extra["iss"] = s.Issuer
	}
	return extra
}

// ForPerson reports whether the grant has a person behind it. A client
// credentials grant has the client itself as its subject. An offline grant
// keeps a person even after its login session, and sid, are gone.
func (s *Session) ForPerson() bool {
	return s.GetSubject() != "" && s.GetSubject() != s.ClientID
}

// GetLoginSessionID returns the login session the grant was issued under.
func (s *Session) GetLoginSessionID() string { return s.LoginSessionID }

// Clone returns a deep copy. fosite clones the stored session on refresh,
// and the embedded DefaultSession's Clone would lose this type.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return deepcopy.Copy(s).(fosite.Session)
}
