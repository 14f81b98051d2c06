// Package backchannel delivers OpenID Connect Back-Channel Logout 1.0
// logout tokens from the provider to relying parties
// (https://openid.net/specs/openid-connect-backchannel-1_0.html).
//
// It mounts no routes. The code that ends a login session decides which
// clients to tell and passes them to Notifier.Notify as Targets, each with
// its registered backchannel_logout_uri. Notify signs one logout token per
// target through the Signer it was given, queues the deliveries and returns.
// A bounded pool of workers started by Notifier.Start sends them.
//
// One client's endpoint must not delay the logout tokens of the others, so
// deliveries are queued per client (Target.ClientID):
//
//   - Each client has its own FIFO queue. The workers take one delivery at
//     a time from the clients with queued deliveries, in turn, so a client
//     with a long queue delays only itself.
//   - At most PerClientConcurrency requests to one client are in flight at
//     once (default 1). A client that responds slowly or not at all holds
//     at most that many of the Workers (default 4), and the others go on
//     with the other clients.
//   - At most PerClientQueueSize deliveries to one client are unfinished at
//     once (default 256), and at most QueueSize in all (default 1024).
//     Notify drops a delivery beyond either bound with an Error log that
//     names the client_id.
//   - A circuit breaker per client counts consecutive failed deliveries,
//     those whose last attempt ended with a retryable error. After
//     BreakerThreshold of them (default 5) the breaker opens for
//     BreakerCooldown (default one minute), and each further failure
//     restarts the cool-down. While it is open, each delivery to the client
//     gets one attempt and no retries, so a dead endpoint costs one request
//     per delivery. A delivered token closes the breaker. Rejections (3xx
//     and other 4xx) leave it as it is.
//
// Enough slow clients can still hold every worker between them (four with
// the defaults) and fill QueueSize (four at 256 deliveries each).
//
// A logout token (spec §2.4) has the header typ "logout+jwt" and the claims
// iss, aud (the client_id), iat, exp (two minutes after iat), a random jti,
// sub, sid (omitted when the session id is empty) and events. It never has a
// nonce. Each token is signed with the client's ID token algorithm, RS256
// unless the client registered another. The algorithm "none" is rejected
// because logout tokens must be signed.
//
// A delivery (spec §2.5) is a POST of logout_token=<JWT> as
// application/x-www-form-urlencoded to the target's URI, which must be an
// absolute http or https URI. Any 2xx response counts as success, although
// §2.8 requires 200 of the RP, because some web frameworks turn an empty 200
// response into 204. Responses are classified as follows:
//
//	2xx                          delivered
//	408, 429, 5xx, network error retried after Backoff, 2×Backoff, 4×Backoff, ...
//	                             until MaxAttempts attempts were made, or
//	                             given up at once while the breaker is open
//	3xx                          given up at once: redirects are never followed
//	other 4xx                    given up at once: the RP rejected the token
//
// A token sent again after more than one minute in the queue or in retries
// is signed again with a new iat, exp and jti, so that the RP never receives
// an expired token.
//
// The package does not find the sessions or clients to notify; the caller
// passes them. Deliveries are not stored, so a restart loses those still
// queued, and Retry-After is not read. Plain http goes only to loopback
// hosts, but https URIs may name any address, so the caller must validate
// client registrations.
//
// Logs never contain a logout token. They name the client_id, the host of
// the URI, the attempt, and the status or error.
package backchannel
