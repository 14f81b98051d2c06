// Package userapi is Latchkey's user API, a resource server. It trusts
// nothing but access tokens verified by package bearer against the
// provider's published keys. It reads permissions from the database on
// every request, so that a removed role stops working at once.
//
// Routes, with the token scope and the permission each needs:
//
//	GET    /v1/me                      account  (own account)
//	PATCH  /v1/me                      account  (own account)
//	POST   /v1/me/password             account  (own account)
//	GET    /v1/me/permissions          account  (own account)
//	GET    /v1/users                   admin    users:read
//	POST   /v1/users                   admin    users:write
//	GET    /v1/users/{id}              admin    users:read
//	PATCH  /v1/users/{id}              admin    users:write
//	POST   /v1/users/{id}/disable      admin    users:write
//	POST   /v1/users/{id}/enable       admin    users:write
//	DELETE /v1/users/{id}              admin    users:write
//	GET    /v1/users/{id}/roles        admin    users:read
//	PUT    /v1/users/{id}/roles/{role} admin    roles:write
//	DELETE /v1/users/{id}/roles/{role} admin    roles:write
//	GET    /v1/roles                   admin    users:read
//	POST   /v1/roles                   admin    roles:write
//	GET    /v1/roles/{id}              admin    users:read
//	PATCH  /v1/roles/{id}              admin    roles:write
//	DELETE /v1/roles/{id}              admin    roles:write
//	GET    /v1/audit-events            admin    audit:read
//	GET    /health/alive, /health/ready
//
// Every change is written together with its audit event in one
// transaction. Errors are RFC 9457 problem documents.
package userapi
