package provider

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// claimsRequest is the claims request parameter of OpenID Connect Core
// §5.5: the individual claims a client asks for, for userinfo and for the
// ID token. Latchkey releases a requested claim when the client may use the
// scope that would release it and the person consented to that scope. The
// essential flag and values change nothing, as §5.5.1 allows.
type claimsRequest struct {
	Userinfo map[string]json.RawMessage `json:"userinfo"`
	IDToken  map[string]json.RawMessage `json:"id_token"`
}

// maxClaimsRequest bounds the claims parameter. Real requests name a few
// dozen claims at most.
const maxClaimsRequest = 4096

// claimScopes maps each standard claim (OpenID Connect Core §5.1) to the
// scope that releases it (§5.4).
var claimScopes = map[string]string{
	"name": "profile", "family_name": "profile", "given_name": "profile", "middle_name": "profile",
	"nickname": "profile", "preferred_username": "profile", "profile": "profile", "picture": "profile",
	"website": "profile", "gender": "profile", "birthdate": "profile", "zoneinfo": "profile",
	"locale": "profile", "updated_at": "profile",
	"email": "email", "email_verified": "email",
	"address":      "address",
	"phone_number": "phone", "phone_number_verified": "phone",
}

// parseClaimsRequest parses the claims parameter. An empty one is no
// request.
func parseClaimsRequest(raw string) (*claimsRequest, error) {
	request := &claimsRequest{}
	if raw == "" {
		return request, nil
	}
	if len(raw) > maxClaimsRequest {
		return nil, fosite.ErrInvalidRequest.WithHintf("The claims parameter is longer than %d bytes.", maxClaimsRequest)
	}
	if err := json.Unmarshal([]byte(raw), request); err != nil {
		return nil, fosite.ErrInvalidRequest.WithHint("The claims parameter is not a JSON object of userinfo and id_token members (OpenID Connect Core 5.5).")
	}
	for _, members := range []map[string]json.RawMessage{request.Userinfo, request.IDToken} {
		for name, value := range members {
			var individual *struct {
				Essential *bool           `json:"essential"`
				Values    json.RawMessage `json:"values"`
			}
			if err := json.Unmarshal(value, &individual); err != nil {
				return nil, fosite.ErrInvalidRequest.WithHintf("The claims parameter asks for %q with something other than null or an object.", name)
			}
			if individual != nil && len(individual.Values) > 0 {
				var values []json.RawMessage
				if err := json.Unmarshal(individual.Values, &values); err != nil {
					return nil, fosite.ErrInvalidRequest.WithHintf("The values of claim %q must be an array.", name)
				}
			}
		}
	}
	return request, nil
}

// releasable returns the names of the claims in members that client may
// receive, sorted.
func releasable(members map[string]json.RawMessage, client *storage.Client) []string {
	var names []string
	for name := range members {
		if scope, ok := claimScopes[name]; ok && slices.Contains(client.Scopes, scope) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// consentScopes are the scopes a person consents to for an authorization
// request: the requested ones, plus those whose claims the claims
// parameter requests. The page lists them, and the stored consent covers
// them.
func consentScopes(form url.Values, client *storage.Client) []string {
	scopes := strings.Fields(form.Get("scope"))
	request, err := parseClaimsRequest(form.Get("claims"))
	if err != nil {
		return scopes
	}
	for _, members := range []map[string]json.RawMessage{request.Userinfo, request.IDToken} {
		for _, name := range releasable(members, client) {
			if scope := claimScopes[name]; !slices.Contains(scopes, scope) {
				scopes = append(scopes, scope)
			}
		}
	}
	return scopes
}

// pickClaims returns the claims of all that names lists.
func pickClaims(all map[string]any, names []string) map[string]any {
	picked := map[string]any{}
	for _, name := range names {
		if value, ok := all[name]; ok {
			picked[name] = value
		}
	}
	return picked
}

// individualClaim is one member of a claims request (OpenID Connect Core
// §5.5.1): null, or an object with essential, value or values.
type individualClaim struct {
	Essential bool     `json:"essential"`
	Value     any      `json:"value"`
	Values    []string `json:"values"`
}

// idTokenClaim returns the request for claim name in the ID token, or nil.
func idTokenClaim(form url.Values, name string) *individualClaim {
	request, err := parseClaimsRequest(form.Get("claims"))
	if err != nil || request.IDToken[name] == nil {
		return nil
	}
	var claim individualClaim
	if json.Unmarshal(request.IDToken[name], &claim) != nil {
		return nil
	}
	return &claim
}

// requestedSubject returns the sub value the claims parameter requires of
// the ID token, or "". Only that user may get a code or token (§5.5.1).
func requestedSubject(form url.Values) string {
	if claim := idTokenClaim(form, "sub"); claim != nil {
		if sub, ok := claim.Value.(string); ok {
			return sub
		}
	}
	return ""
}

// requestedACRValues returns the acr values the claims parameter requests
// for the ID token, and whether they are essential (§5.5.1.1).
func requestedACRValues(form url.Values) ([]string, bool) {
	claim := idTokenClaim(form, "acr")
	if claim == nil {
		return nil, false
	}
	values := slices.Clone(claim.Values)
	if value, ok := claim.Value.(string); ok {
		values = append(values, value)
	}
	return values, claim.Essential && len(values) > 0
}
