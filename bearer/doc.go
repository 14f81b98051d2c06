// Package bearer verifies JWT access tokens (RFC 9068) for Latchkey's
// resource servers, the user API and the session API. It trusts nothing but
// the provider's published keys, so it verifies tokens exactly as a third
// party would.
//
// A Verifier finds the JWKS through OpenID Connect Discovery 1.0 at
// Issuer + "/.well-known/openid-configuration", or at Config.JWKSURL, and
// keeps the parsed keys in memory. After New's first fetch, it fetches them
// again only when a token names an unknown kid, when Refresh is called, or in
// the background when the cached set is older than Config.KeyMaxAge, and
// never more than once per Config.MinRefreshInterval. Tokens signed with a cached key keep verifying
// while the provider is down.
//
// Verifier.Verify checks a token's header (typ at+jwt, kid, an allowed
// asymmetric alg), signature, iss, aud, time claims and the claims RFC 9068
// §2.2 requires. Verifier.Middleware does the same for gin requests. It
// reads the token from the Authorization header (RFC 6750 §2.1), requires
// scopes, and stores the verified Claims for ClaimsFrom. It responds to
// failures with RFC 6750 §3 challenges and RFC 9457 problem documents.
//
// The package does not decide what a subject may do beyond scopes: handlers
// read roles and other claims from Claims.Raw. Nor does it check whether a
// token was revoked. The one exception is Config.SessionCheck: when set, as
// the session API is meant to set it, a token whose login session (sid) has
// ended is rejected.
package bearer
