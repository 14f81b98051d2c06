package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// storedUser reads a user from the SQLite database in dataDir.
func storedUser(t *testing.T, dataDir, username string) (*storage.User, error) {
	t.Helper()
	db, err := storage.Open(t.Context(), storage.SQLitePath(dataDir))
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	defer db.Close()
	return storage.NewStore(db).GetUserByUsername(t.Context(), username)
}

func TestUsersCreateSetsClaims(t *testing.T) {
	clearEnvironment(t)
	dataDir := t.TempDir()
	common := []string{"--data-dir", dataDir, "--system-secret", strings.Repeat("k", 40)}
	if _, err := run(t, "", append([]string{"migrate", "up"}, common...)...); err != nil {
		t.Fatal(err)
	}

	out, err := run(t, "correct horse battery\n", append([]string{"users", "create", "--username", "hana",
		"--email", "hana@example.com", "--password-stdin",
		"--middle-name", "Mei", "--nickname", " Hani ", "--profile-url", "https://people.example.com/hana",
		"--website", "https://hana.example.org/", "--gender", "female", "--birthdate", "1984-11-05",
		"--address-formatted", "1-2-3 Shibuya\nTokyo 150-0002\nJapan", "--street-address", "1-2-3 Shibuya",
		"--locality", "Shibuya", "--region", "Tokyo", "--postal-code", "150-0002", "--country", "Japan",
		"--picture", "https://people.example.com/hana.png", "--locale", "ja-JP", "--zoneinfo", "Asia/Tokyo",
		"--phone-number", "+81312345678", "--phone-number-verified",
	}, common...)...)
	if err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}

	user, err := storedUser(t, dataDir, "hana")
	if err != nil {
		t.Fatalf("read created user: %v", err)
	}
	fields := []struct {
		flag      string
		got, want string
	}{
		{"--middle-name", user.MiddleName, "Mei"},
		{"--nickname", user.Nickname, "Hani"},
		{"--profile-url", user.Profile, "https://people.example.com/hana"},
		{"--website", user.Website, "https://hana.example.org/"},
		{"--gender", user.Gender, "female"},
		{"--birthdate", user.Birthdate, "1984-11-05"},
		{"--address-formatted", user.Address.Formatted, "1-2-3 Shibuya\nTokyo 150-0002\nJapan"},
		{"--street-address", user.Address.StreetAddress, "1-2-3 Shibuya"},
		{"--locality", user.Address.Locality, "Shibuya"},
		{"--region", user.Address.Region, "Tokyo"},
		{"--postal-code", user.Address.PostalCode, "150-0002"},
		{"--country", user.Address.Country, "Japan"},
		{"--picture", user.Picture, "https://people.example.com/hana.png"},
		{"--locale", user.Locale, "ja-JP"},
		{"--zoneinfo", user.Zoneinfo, "Asia/Tokyo"},
		{"--phone-number", user.PhoneNumber, "+81312345678"},
	}
	if !user.PhoneNumberVerified {
		t.Errorf("user created with --phone-number-verified has an unverified phone number")
	}
	for _, field := range fields {
		if field.got != field.want {
			t.Errorf("user created with %s has %q, expected %q", field.flag, field.got, field.want)
		}
	}
}

func TestUsersCreateRejectsInvalidClaims(t *testing.T) {
	clearEnvironment(t)
	dataDir := t.TempDir()
	common := []string{"--data-dir", dataDir, "--system-secret", strings.Repeat("k", 40)}
	if _, err := run(t, "", append([]string{"migrate", "up"}, common...)...); err != nil {
		t.Fatal(err)
	}

	_, err := run(t, "correct horse battery\n", append([]string{"users", "create", "--username", "ivo",
		"--email", "ivo@example.com", "--password-stdin",
		"--birthdate", "1849", "--website", "javascript:alert(1)", "--profile-url", "/ivo",
		"--gender", strings.Repeat("g", 65), "--nickname", "I\x07", "--locality", "Split\nCroatia",
		"--locale", "not a tag!", "--zoneinfo", "../etc/passwd", "--phone-number", "0800 123",
	}, common...)...)
	if err == nil {
		t.Fatal("users create accepted invalid claims")
	}
	for _, flag := range []string{"--birthdate", "--website", "--profile-url", "--gender", "--nickname", "--locality",
		"--locale", "--zoneinfo", "--phone-number"} {
		if !strings.Contains(err.Error(), flag+" ") {
			t.Errorf("error %q does not name %s", err, flag)
		}
	}
	if strings.Contains(err.Error(), "--middle-name") || strings.Contains(err.Error(), "--country") {
		t.Errorf("error %q names a flag that was not set", err)
	}

	if user, err := storedUser(t, dataDir, "ivo"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetUserByUsername(ivo) = %v, %v; expected fosite.ErrNotFound after the rejected command", user, err)
	}
}
