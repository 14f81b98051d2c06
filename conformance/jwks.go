package conformance

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

var (
	checkFetchServerKeys = defineCheck("FetchServerKeys",
		"jwks_uri is present and returns a JSON object")
	checkServerKeysValid = defineCheck("CheckServerKeysIsValid",
		"the JWK set parses with a JOSE library")
	checkJWKSNoPrivateKeys = defineCheck("EnsureJwksHasNoPrivateOrSymmetricKeyMaterial",
		"the JWK set has no private members and no symmetric (oct) keys")
	checkJWKSStructure = defineCheck("ValidateJwksStructure",
		"the JWK set has a keys array whose keys have kty and the members their kty needs, as unpadded base64url")
	checkJWKSUsableKeys = defineCheck("ParseUsableJwksKeys",
		"every key of a supported type parses")
	checkJWKSUnusableKeys = defineCheck("WarnOnUnusableJwksKeys",
		"no key has an unsupported kty, curve or alg")
	checkJWKSKeyIDs = defineCheck("CheckForKeyIdInServerJWKs",
		"every key has a non-blank kid")
	checkJWKSDistinctKeyIDs = defineCheck("CheckDistinctKeyIdValueInServerJWKs",
		"no two keys share a kid")
)

// privateMembers are the JWK members of private or symmetric keys
// (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// requiredMembers are the public members each key type needs.
var requiredMembers = map[string][]string{
	"RSA": {"n", "e"},
	"EC":  {"crv", "x", "y"},
	"OKP": {"crv", "x"},
	"oct": {"k"},
}

var base64URLMembers = map[string]bool{"n": true, "e": true, "x": true, "y": true, "d": true, "p": true, "q": true, "dp": true, "dq": true, "qi": true, "k": true}

// supportedSigningAlgs are the JWS algorithms the harness verifies.
var supportedSigningAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// parseServerJWKS checks a fetched JWK set as every module does after
// discovery (RFC 7517 §5, OpenID Connect Core §10.1), with keysValid as the
// severity of CheckServerKeysIsValid, and returns the keys that parsed.
func parseServerJWKS(r recorder, fetched *httpResult, keysValid Severity) []jose.JSONWebKey {
	if fetched.Err != nil {
		report(r, checkFetchServerKeys, Fatal, "GET %s failed: %v", fetched.URL, fetched.Err)
		return nil
	}
	var raw map[string]any
	if err := json.Unmarshal(fetched.Body, &raw); err != nil || raw == nil {
		report(r, checkFetchServerKeys, Fatal, "GET %s returned status %d with a body that is not a JSON object: %.200s", fetched.URL, fetched.Status, fetched.Body)
		return nil
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(fetched.Body, &set); err != nil {
		report(r, checkServerKeysValid, keysValid, "the JWK set does not parse: %v", err)
	}

	items, ok := raw["keys"].([]any)
	if !ok {
		report(r, checkJWKSStructure, Failure, "the JWK set has no keys array")
		return nil
	}
	var keys []jose.JSONWebKey
	seen := map[string]bool{}
	for i, item := range items {
		member, ok := item.(map[string]any)
		if !ok {
			report(r, checkJWKSStructure, Failure, "key %d is not a JSON object", i)
			continue
		}
		if key, ok := checkJWK(r, i, member, seen); ok {
			keys = append(keys, key)
		}
	}
	return keys
}

// checkJWK checks one key of a server JWK set and parses it when its type
// is supported.
func checkJWK(r recorder, index int, member map[string]any, seenKeyIDs map[string]bool) (jose.JSONWebKey, bool) {
	kty, _ := member["kty"].(string)
	kid, _ := member["kid"].(string)
	name := fmt.Sprintf("key %d (kid %q)", index, kid)

	for _, private := range privateMembers {
		if _, present := member[private]; present {
			report(r, checkJWKSNoPrivateKeys, Failure, "%s has the private member %q", name, private)
		}
	}
	if kty == "oct" {
		report(r, checkJWKSNoPrivateKeys, Failure, "%s is a symmetric (oct) key", name)
	}
	if strings.TrimSpace(kid) == "" {
		report(r, checkJWKSKeyIDs, Failure, "%s has no kid", name)
	} else if seenKeyIDs[kid] {
		report(r, checkJWKSDistinctKeyIDs, Failure, "kid %q is used by more than one key", kid)
	}
	seenKeyIDs[kid] = true

	if kty == "" {
		report(r, checkJWKSStructure, Failure, "%s has no kty", name)
		return jose.JSONWebKey{}, false
	}
	required, known := requiredMembers[kty]
	if !known {
		report(r, checkJWKSUnusableKeys, Warning, "%s has the unsupported kty %q", name, kty)
		return jose.JSONWebKey{}, false
	}
	structureOK := true
	for _, m := range required {
		if _, present := member[m]; !present {
			report(r, checkJWKSStructure, Failure, "%s (kty %s) lacks %q", name, kty, m)
			structureOK = false
		}
	}
	for m, value := range member {
		if !base64URLMembers[m] {
			continue
		}
		s, ok := value.(string)
		if !ok || !isUnpaddedBase64URL(s) {
			report(r, checkJWKSStructure, Failure, "%s member %q is not unpadded base64url", name, m)
			structureOK = false
		}
	}
	if !structureOK || kty == "oct" {
		return jose.JSONWebKey{}, false
	}
	if crv, _ := member["crv"].(string); kty != "RSA" && !supportedCurve(kty, crv) {
		report(r, checkJWKSUnusableKeys, Warning, "%s has the unsupported curve %q", name, crv)
		return jose.JSONWebKey{}, false
	}
	if alg, _ := member["alg"].(string); alg != "" && !isSupportedAlg(alg) {
		report(r, checkJWKSUnusableKeys, Warning, "%s has the unsupported alg %q", name, alg)
	}

	data, _ := json.Marshal(member)
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(data); err != nil {
		report(r, checkJWKSUsableKeys, Failure, "%s does not parse: %v", name, err)
		return jose.JSONWebKey{}, false
	}
	return key, true
}

func supportedCurve(kty, crv string) bool {
	switch kty {
	case "EC":
		return crv == "P-256" || crv == "P-384" || crv == "P-521"
	case "OKP":
		return crv == "Ed25519"
	}
	return false
}

func isSupportedAlg(alg string) bool {
	for _, a := range supportedSigningAlgs {
		if string(a) == alg {
			return true
		}
	}
	return alg == "RSA-OAEP" || alg == "RSA-OAEP-256" || strings.HasPrefix(alg, "ECDH-ES")
}

func isUnpaddedBase64URL(s string) bool {
	if s == "" || strings.ContainsAny(s, "=+/") {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
