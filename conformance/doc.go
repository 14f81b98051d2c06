// Package conformance is Latchkey's black-box OpenID Connect OP conformance
// harness. It makes the checks of the OpenID Foundation's conformance suite
// (github.com/openid-certification/conformance-suite) against any OpenID
// provider, through HTTP and a browser only, because the suite itself
// (Java, MongoDB, Docker) cannot run on Latchkey's machines.
//
// Run takes an issuer and plans (basic, implicit, hybrid, config, dynamic,
// the three formpost plans and the three logout plans) and runs each plan's
// modules, named as in the suite, concurrently. Every check has the
// suite's condition name and severity (F! stops the module, F fails it, W
// warns, I informs) and the results combine as the suite combines them:
// PASSED, WARNING, FAILED, SKIPPED or REVIEW, the last for modules whose
// screenshot a person must judge. Checks that the specifications make but
// the suite does not (EXTRA) are reported apart and never change a result.
//
// The harness owns these parts:
//
//   - a callback server on 127.0.0.1 (callback.go) that plays the relying
//     party: redirect URIs, the page that posts a fragment back, logout
//     endpoints, and the client JWKS, request objects and sector
//     identifiers the provider fetches;
//   - two user agents (agent.go): an HTTP driver with a cookie jar that
//     fills the login and consent forms and submits form_post pages
//     (httpdriver.go), and headless Chromium through chromedp
//     (browser.go) for screenshots, iframes and a real form_post;
//   - dynamic client registration (registration.go), or three static
//     clients from a file;
//   - the checks on discovery, JWK sets, ID tokens, token, userinfo and
//     error responses, and the modules that call them (modules_*.go).
//
// `latchkey conformance run` in cmd/latchkey is the command line around
// Run.
package conformance
