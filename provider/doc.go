// Package provider is Latchkey's OAuth 2.0 and OpenID Connect authorization
// server, built on github.com/ory/fosite.
//
// It mounts these routes on one http.Handler:
//
//	GET      /.well-known/openid-configuration     OpenID Connect Discovery 1.0
//	GET      /.well-known/oauth-authorization-server  RFC 8414 metadata
//	GET      /.well-known/jwks.json                 published signing keys
//	GET/POST /oauth2/auth                           authorization endpoint (RFC 6749 §3.1)
//	GET/POST /login                                 username and password page
//	GET/POST /consent                               consent page
//	POST     /oauth2/token                          token endpoint (RFC 6749 §3.2)
//	POST     /oauth2/introspect                     RFC 7662 introspection
//	POST     /oauth2/revoke                         RFC 7009 revocation
//	GET/POST /oauth2/logout                         OpenID Connect RP-Initiated Logout 1.0
//	GET/POST /userinfo                              OpenID Connect Core §5.3
//	GET      /health/alive, /health/ready           liveness and readiness
//
// fosite validates requests and issues tokens. This package decides who the
// user is (login pages and login sessions), what they approved (consent),
// and which keys sign what (KeySet). Durable state is reached through the
// interfaces in deps.go, implemented by package storage.
package provider
