package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/backchannel"
	"github.com/latchkey/latchkey/storage"
)

// Limits on fetching a request_uri (OpenID Connect Core §6.2). Request
// objects are small, so anything slower or larger is rejected.
const (
	requestURITimeout   = 5 * time.Second
	maxRequestObject    = 64 << 10
	requestObjectMaxAge = time.Hour
)

// requestObjectAlgorithms are the algorithms request objects may be signed
// with. "none" carries no more authority than the query string: Latchkey
// accepts it unless the client registered a signing algorithm.
var requestObjectAlgorithms = []string{"none", AlgRS256, AlgES256}

// requestObjectControlClaims are the JWT claims of a request object that
// are not authorization request parameters.
var requestObjectControlClaims = []string{"iss", "aud", "exp", "iat", "nbf", "jti", "request", "request_uri"}

// expandRequestObject replaces the request or request_uri parameter of an
// authorization request with the parameters of the request object it
// holds or names (OpenID Connect Core §6). Parameters in the object win
// over the query. Latchkey does this itself rather than leave it to fosite,
// which turns numbers and JSON values of the object into Go syntax, and
// would fetch a request_uri again when a paused flow resumes.
func (p *Provider) expandRequestObject(ctx context.Context, form url.Values) error {
	raw, location := form.Get("request"), form.Get("request_uri")
	if raw == "" && location == "" {
		return nil
	}
	form.Del("request")
	form.Del("request_uri")
	if raw != "" && location != "" {
		return fosite.ErrInvalidRequest.WithHint("Send request or request_uri, not both.")
	}

	client, err := p.store.GetClientByID(ctx, form.Get("client_id"))
	if err != nil {
		// fosite rejects the unknown client when it parses the same form.
		return nil
	}

	if location != "" {
		if raw, err = p.fetchRequestObject(ctx, client, location); err != nil {
			return err
		}
	}

	claims, err := p.verifyRequestObject(ctx, client, raw)
	if err != nil && location != "" {
		// Every failure past registration gets the same error, so the
		// response reveals nothing about what the URI returned. Otherwise
		// request_uri would probe hosts the provider can reach.
		return errRequestURIFailed.WithWrap(err).WithDebug(err.Error())
	}
	if err != nil {
		return err
	}

	if id, present := claims["client_id"]; present && id != client.ID {
		return fosite.ErrInvalidRequestObject.WithHint("The request object's client_id differs from the query's.")
	}
	if responseType, ok := claims["response_type"].(string); ok && form.Has("response_type") &&
		!fosite.Arguments(strings.Fields(responseType)).Matches(strings.Fields(form.Get("response_type"))...) {
		return fosite.ErrInvalidRequestObject.WithHint("The request object's response_type differs from the query's.")
	}

	for name, value := range claims {
		if slices.Contains(requestObjectControlClaims, name) {
			continue
		}
		text, err := parameterText(value)
		if err != nil {
			return fosite.ErrInvalidRequestObject.WithHintf("The request object's %q parameter cannot be used: %s.", name, err)
		}
		form.Set(name, text)
	}
	return nil
}

// parameterText renders a JSON value of a request object as the query
// parameter it stands for: strings as they are, numbers in decimal, and
// objects (such as claims) as compact JSON.
func parameterText(value any) (string, error) {
	switch v := value.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return fmt.Sprint(v), nil
	case nil:
		return "", errors.New("it is null")
	default:
		data, err := json.Marshal(v)
		return string(data), err
	}
}

// fetchRequestObject gets a request object by reference. Only a
// request_uri registered for the client is fetched; its fragment, which
// RFC 3986 keeps on the client's side, is ignored when comparing.
func (p *Provider) fetchRequestObject(ctx context.Context, client *storage.Client, location string) (string, error) {
	if !slices.Contains(withoutFragments(client.Metadata.RequestURIs), withoutFragment(location)) {
		return "", fosite.ErrInvalidRequestURI.WithHint("The request_uri is not registered for this client.")
	}
	target, err := url.Parse(location)
	if err != nil || !(target.Scheme == "https" || target.Scheme == "http" && backchannel.IsLoopbackHost(target.Hostname())) {
		return "", fosite.ErrInvalidRequestURI.WithHint("The request_uri must use https.")
	}
	target.Fragment = ""
	ctx, cancel := context.WithTimeout(ctx, requestURITimeout)
	defer cancel()
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return "", errRequestURIFailed.WithWrap(err).WithDebug(err.Error())
	}
	request.Header.Set("Accept", "application/oauth-authz-req+jwt, application/jwt")
	response, err := p.requestURIClient.Do(request)
	if err != nil {
		return "", errRequestURIFailed.WithWrap(err).WithDebug(err.Error())
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return "", errRequestURIFailed.WithDebugf("fetching the request_uri answered HTTP %d", response.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(response.Body, maxRequestObject+1))
	if err != nil || len(body) > maxRequestObject {
		return "", errRequestURIFailed.WithDebugf("the request object could not be read or is larger than %d bytes", maxRequestObject)
	}
	return string(bytes.TrimSpace(body)), nil
}

// errRequestURIFailed is the error for a registered request_uri that could
// not be fetched or did not return a valid request object.
var errRequestURIFailed = fosite.ErrInvalidRequestURI.WithHint("The request_uri could not be fetched or did not return a valid request object.")

func withoutFragment(location string) string {
	before, _, _ := strings.Cut(location, "#")
	return before
}

func withoutFragments(locations []string) []string {
	stripped := make([]string, len(locations))
	for i, location := range locations {
		stripped[i] = withoutFragment(location)
	}
	return stripped
}

// newRequestURIClient returns the HTTP client that fetches request_uri
// values. It follows no redirects, uses no proxy, and reaches internal
// addresses only when allowPrivate is set. Registration already limits the
// URIs to https or loopback http.
func newRequestURIClient(allowPrivate bool) *http.Client {
	return &http.Client{
		Timeout:       requestURITimeout,
		Transport:     outboundTransport(requestURITimeout, allowPrivate),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// verifyRequestObject checks a request object's signature and JWT claims
// and returns its claims.
func (p *Provider) verifyRequestObject(ctx context.Context, client *storage.Client, raw string) (map[string]any, error) {
	parts := strings.Split(raw, ".")
	if len(parts) == 5 {
		return nil, fosite.ErrInvalidRequestObject.WithHint("Encrypted request objects are not supported.")
	}
	if len(parts) != 3 {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object is not a compact JWS.")
	}
	var header struct {
		Algorithm string `json:"alg"`
	}
	headerJSON, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(headerJSON, &header) != nil {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's header is not valid.")
	}
	if !slices.Contains(requestObjectAlgorithms, header.Algorithm) {
		return nil, fosite.ErrInvalidRequestObject.WithHintf("Request objects signed with %q are not supported.", header.Algorithm)
	}
	registered := client.Metadata.RequestObjectSigningAlg
	if registered != "" && header.Algorithm != registered {
		return nil, fosite.ErrInvalidRequestObject.WithHintf("This client's request objects must be signed with %s.", registered)
	}

	var payload []byte
	if header.Algorithm == "none" {
		if parts[2] != "" {
			return nil, fosite.ErrInvalidRequestObject.WithHint("An unsigned request object must have an empty signature.")
		}
		if payload, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
			return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's payload is not valid base64url.")
		}
	} else if payload, err = p.verifyRequestObjectSignature(ctx, client, raw); err != nil {
		return nil, err
	}

	decoder := json.NewDecoder(bytes.NewReader(payload))
	decoder.UseNumber()
	var claims map[string]any
	if err := decoder.Decode(&claims); err != nil || claims == nil {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's payload is not a JSON object.")
	}
	if header.Algorithm == "none" {
		return claims, nil
	}
	// A signed object vouches for its parameters only if it names its
	// signer and this provider (OpenID Connect Core §6.1), and is fresh.
	if issuer, ok := claims["iss"]; ok && issuer != client.ID {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's iss must be the client_id.")
	}
	if audience, ok := claims["aud"]; ok && !slices.Contains(claimStrings(audience), p.cfg.Issuer) {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's aud must name this provider's issuer.")
	}
	now := p.now()
	if exp, ok := claims["exp"].(json.Number); ok {
		seconds, err := exp.Int64()
		if err != nil || !now.Before(time.Unix(seconds, 0).Add(time.Minute)) {
			return nil, fosite.ErrInvalidRequestObject.WithHint("The request object has expired.")
		}
	}
	if iat, ok := claims["iat"].(json.Number); ok {
		seconds, err := iat.Int64()
		if err != nil || now.Sub(time.Unix(seconds, 0)) > requestObjectMaxAge {
			return nil, fosite.ErrInvalidRequestObject.WithHint("The request object is too old.")
		}
	}
	return claims, nil
}

// verifyRequestObjectSignature checks a signed request object against the
// client's registered keys, fetching its jwks_uri again once when no key
// fits, for a client that rotated its keys.
func (p *Provider) verifyRequestObjectSignature(ctx context.Context, client *storage.Client, raw string) ([]byte, error) {
	signed, err := jose.ParseSigned(raw)
	if err != nil || len(signed.Signatures) != 1 {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object is not a valid JWS.")
	}
	for _, refresh := range []bool{false, true} {
		keys, err := p.clientKeys(ctx, client, refresh)
		if err != nil {
			return nil, err
		}
		for _, key := range candidateKeys(keys, signed.Signatures[0].Header) {
			if payload, err := signed.Verify(key.Key); err == nil {
				return payload, nil
			}
		}
		if client.Metadata.JWKSURI == "" {
			break
		}
	}
	return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's signature does not verify with the client's registered keys.")
}

// clientKeys returns a client's registered public keys.
func (p *Provider) clientKeys(ctx context.Context, client *storage.Client, refresh bool) (*jose.JSONWebKeySet, error) {
	if keys := client.GetJSONWebKeys(); keys != nil {
		return keys, nil
	}
	if client.Metadata.JWKSURI == "" {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The client registered no keys to verify signed request objects with.")
	}
	keys, err := p.fosite.GetJWKSFetcherStrategy(ctx).Resolve(ctx, client.Metadata.JWKSURI, refresh)
	if err != nil {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The client's jwks_uri could not be fetched.").WithWrap(err).WithDebug(err.Error())
	}
	return keys, nil
}

// candidateKeys are the signing keys of set that may have made a signature
// with header: the one its kid names, or every signing key of the right
// type when it names none.
func candidateKeys(set *jose.JSONWebKeySet, header jose.Header) []jose.JSONWebKey {
	var candidates []jose.JSONWebKey
	for _, key := range set.Keys {
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if header.KeyID != "" && key.KeyID != header.KeyID {
			continue
		}
		if key.Algorithm != "" && key.Algorithm != header.Algorithm {
			continue
		}
		candidates = append(candidates, key)
	}
	return candidates
}
