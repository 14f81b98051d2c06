package provider_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

func TestDiscoveryLogoutMetadata(t *testing.T) {
	env := newTestEnv(t)

	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		t.Run(path, func(t *testing.T) {
			resp, err := http.Get(env.issuer + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			var metadata map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&metadata); err != nil {
				t.Fatalf("decode metadata: %v", err)
			}

			if got, want := metadata["end_session_endpoint"], env.issuer+"/oauth2/logout"; got != want {
				t.Errorf("end_session_endpoint = %v, want %q", got, want)
			}
			if got := metadata["backchannel_logout_supported"]; got != true {
				t.Errorf("backchannel_logout_supported = %v, want true", got)
			}
			if got := metadata["backchannel_logout_session_supported"]; got != true {
				t.Errorf("backchannel_logout_session_supported = %v, want true", got)
			}
			// backchannel_logout_session_supported promises a sid claim in ID
			// tokens, so the claim must be listed.
			claims, _ := metadata["claims_supported"].([]any)
			if !slices.Contains(claims, any("sid")) {
				t.Errorf("claims_supported = %v, want it to contain sid", claims)
			}
		})
	}
}
