package provider_test

import (
	"testing"

	"github.com/latchkey/latchkey/provider"
)

func TestValidateIssuer(t *testing.T) {
	valid := []string{
		"https://id.example.com", "https://id.example.com/tenant", "http://127.0.0.1:3001",
		"http://127.10.0.1", "http://[::1]:3001", "http://localhost:3001", "http://app.localhost",
	}
	for _, issuer := range valid {
		if err := provider.ValidateIssuer(issuer); err != nil {
			t.Errorf("ValidateIssuer(%q) = %v, want nil", issuer, err)
		}
	}
	invalid := []string{
		"http://id.example.com", "http://127.example.com", "http://127.0.0.1.example.com",
		"https://id.example.com?x=1", "https://id.example.com#f", "ftp://id.example.com", "/relative",
	}
	for _, issuer := range invalid {
		if err := provider.ValidateIssuer(issuer); err == nil {
			t.Errorf("ValidateIssuer(%q) = nil, want an error", issuer)
		}
	}
}
