// Package testsupport provides the end-to-end test helpers that the test
// packages of provider, userapi, sessionapi and bearer share, so that each
// helper exists once:
//
//   - servers: Listen, Serve and Logger for the services under test, and
//     NewVerifier and SessionAlive, the access token verifier of the APIs
//     wired as `latchkey serve` wires it
//   - a person's browser (Browser, Page) that signs in through the login and
//     MFA pages, and CallbackParams for the redirect back to the client
//   - a confidential client (OAuthClient) that runs the authorization code
//     flow with PKCE through golang.org/x/oauth2, and CreateClient,
//     CreateUser and AssignRole to set up the store
//   - requests to the JSON APIs (APIClient, APIResponse) and checks of their
//     RFC 9457 problem documents
//   - TOTP codes for the MFA tests, and JWTPayload and StringsClaim to read
//     tokens
//
// Only _test.go files should import it. Each test package still builds its
// own test environment, because each wires different services.
package testsupport
