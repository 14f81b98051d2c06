package conformance

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// The request object modules (OpenID Connect Core §6): the authorization
// request travels as a JWT, by value (request) or by reference
// (request_uri).

func init() {
	for _, spec := range []*moduleSpec{
		{Name: "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", run: runUnsignedRequestObject},
		{Name: "oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported", run: requestURIModule(false, true), dynamicOnly: true},
		{Name: "oidcc-request-uri-unsigned", run: requestURIModule(false, false), dynamicOnly: true},
		{Name: "oidcc-request-uri-signed-rs256", run: requestURIModule(true, false), dynamicOnly: true},
		{Name: "oidcc-ensure-request-object-with-redirect-uri", run: runRequestObjectWithRedirectURI, browser: true},
	} {
		defineModule(spec)
	}
}

// requestObject encodes the parameters of req as request object claims,
// unsigned (alg none) or signed RS256 with the client's key, with the
// issuer as aud and the client as iss.
func (m *moduleRun) requestObject(c *client, req *authRequest, signed bool) string {
	claims := map[string]any{}
	for name, value := range req.params {
		switch name {
		case "max_age":
			if n, err := strconv.Atoi(value); err == nil {
				claims[name] = n
				continue
			}
		case "claims":
			var parsed any
			if json.Unmarshal([]byte(value), &parsed) == nil {
				claims[name] = parsed
				continue
			}
		}
		claims[name] = value
	}

	if !signed {
		header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))
		payload, _ := json.Marshal(claims)
		return header + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	}
	claims["iss"] = c.ID
	claims["aud"] = m.config.str("issuer")

	options := &jose.SignerOptions{}
	if c.KeyID != "" {
		options = options.WithHeader("kid", c.KeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: c.Key}, options)
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(claims)
	signature, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	compact, err := signature.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return compact
}

// byReference returns the request that repeats only response_type,
// client_id, scope and redirect_uri of req in the query, as the official
// suite sends request objects.
func byReference(req *authRequest, name, value string) *authRequest {
	outer := &authRequest{client: req.client, params: map[string]string{name: value}}
	for _, kept := range []string{"response_type", "client_id", "scope", "redirect_uri", "response_mode"} {
		if v, ok := req.params[kept]; ok {
			outer.params[kept] = v
		}
	}
	return outer
}

// skipUnlessUnsignedObjects skips when discovery lists request object
// algorithms without none.
func (m *moduleRun) skipUnlessUnsignedObjects() {
	if algs, present := m.config.stringList("request_object_signing_alg_values_supported"); present && !slices.Contains(algs, "none") {
		m.skip("request_object_signing_alg_values_supported %v does not list none, so unsigned request objects cannot be tested", algs)
	}
}

// oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported:
// the provider processes an unsigned request object, taking state and
// nonce from it, or returns request_not_supported (skip).
func runUnsignedRequestObject(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	m.skipUnlessUnsignedObjects()
	if !m.config.boolean("request_parameter_supported") {
		report(m, checkDiscoveryRequestParameter, Warning, "request_parameter_supported is not true")
	}
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	res := m.authorize(byReference(req, "request", m.requestObject(c, req, false)))
	m.requireCallback(res)
	if m.anyModeParameters(res).Get("error") == "request_not_supported" {
		m.skip("the provider answered request_not_supported")
	}
	m.completeFlow(c, req, res, flowOptions{})
}

// requestURIModule runs the request_uri modules. The harness serves the
// object at a URL with a fragment that does not match its content, which
// the provider must not reject. tolerant modules skip on
// request_uri_not_supported; the Dynamic plan's modules require support.
func requestURIModule(signed, tolerant bool) func(*moduleRun) {
	return func(m *moduleRun) {
		m.setupFor(m.variant.ClientAuth)
		supported, present := m.config.Raw["request_uri_parameter_supported"]
		switch {
		case tolerant && present && supported != true:
			report(m, checkDiscoveryRequestURIParameter, Warning, "request_uri_parameter_supported is %s", compactJSON(supported))
		case !tolerant && present && supported != true:
			report(m, checkDiscoveryRequestURIParameter, Failure, "request_uri_parameter_supported is %s, but Dynamic OPs must support request_uri", compactJSON(supported))
		}
		metadata := map[string]any{}
		if signed {
			if algs, _ := m.config.stringList("request_object_signing_alg_values_supported"); !slices.Contains(algs, "RS256") {
				report(m, checkDiscoveryRequestObjectAlgs, Failure, "request_object_signing_alg_values_supported %v does not contain RS256", algs)
			}
			metadata["request_object_signing_alg"] = "RS256"
		} else {
			m.skipUnlessUnsignedObjects()
		}

		name := randomString(64)
		unrelated := make([]byte, 32)
		_, _ = rand.Read(unrelated)
		sum := sha256.Sum256(unrelated)
		requestURI := m.base + "/requesturi/" + name + "#" + base64.RawURLEncoding.EncodeToString(sum[:])
		metadata["request_uris"] = []string{requestURI}
		c := m.newClient(clientOptions{metadata: metadata})

		req := m.newAuthRequest(c)
		m.inbox.setRequestObject(name, []byte(m.requestObject(c, req, signed)))
		res := m.authorize(byReference(req, "request_uri", requestURI))
		m.requireCallback(res)
		if tolerant && m.anyModeParameters(res).Get("error") == "request_uri_not_supported" {
			m.skip("the provider answered request_uri_not_supported")
		}
		m.completeFlow(c, req, res, flowOptions{})
	}
}

// oidcc-ensure-request-object-with-redirect-uri: the request object holds
// the registered redirect_uri and the query an unregistered one. The
// provider must use the object's value, or show an error page.
func runRequestObjectWithRedirectURI(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	m.skipUnlessUnsignedObjects()
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	outer := byReference(req, "request", m.requestObject(c, req, false))
	outer.set("redirect_uri", c.redirectURI()+"/_invalid")
	res := m.authorize(outer)
	if res.callback == nil {
		m.expectErrorPage(0, res.nav, "error page for a request object whose redirect_uri differs from the query's")
		return
	}
	if strings.HasSuffix(res.callback.Path, "/_invalid") {
		report(m, checkUnexpectedRedirect, Failure, "the provider redirected to the unregistered redirect_uri of the query")
	}
	if m.anyModeParameters(res).Get("error") == "request_not_supported" {
		report(m, checkRequestObjectRedirect, Failure, "the provider answered request_not_supported at a redirect URI taken from a request it did not process")
	}
	m.completeFlow(c, req, res, flowOptions{})
}
