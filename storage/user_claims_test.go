package storage_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// withAllClaims returns u with every optional standard claim set.
func withAllClaims(u *storage.User) *storage.User {
	u.MiddleName = "Pleasance"
	u.Nickname = "Al"
	u.Profile = "https://people.example.com/alice"
	u.Website = "https://alice.example.org/blog?lang=en"
	u.Gender = "female"
	u.Birthdate = "0000-05-04"
	u.Address = storage.Address{
		Formatted:     "7 Christ Church Lane\nOxford OX1 1DP\nUnited Kingdom",
		StreetAddress: "7 Christ Church Lane\r\nFlat 2",
		Locality:      "Oxford",
		Region:        "Oxfordshire",
		PostalCode:    "OX1 1DP",
		Country:       "United Kingdom",
	}
	return u
}

// claimFields maps the names of a user's optional claim fields to their
// values.
func claimFields(u *storage.User) map[string]any {
	return map[string]any{
		"MiddleName": u.MiddleName, "Nickname": u.Nickname, "Profile": u.Profile, "Website": u.Website,
		"Gender": u.Gender, "Birthdate": u.Birthdate, "Address": u.Address,
	}
}

func compareClaims(t *testing.T, source string, got, want *storage.User) {
	t.Helper()
	gotFields, wantFields := claimFields(got), claimFields(want)
	for name, wantValue := range wantFields {
		if !reflect.DeepEqual(gotFields[name], wantValue) {
			t.Errorf("%s: %s = %#v, expected %#v", source, name, gotFields[name], wantValue)
		}
	}
}

func TestUserClaimsRoundTrip(t *testing.T) {
	for _, backend := range []string{storagetest.SQLite, storagetest.Postgres} {
		t.Run(backend, func(t *testing.T) {
			if backend == storagetest.Postgres {
				skipWithoutServices(t)
			}
			testUserClaimsRoundTrip(t, backend)
		})
	}
}

func testUserClaimsRoundTrip(t *testing.T, backend string) {
	t.Run("new user has no claims", func(t *testing.T) {
		store := storage.NewStore(storagetest.NewDatabaseOn(t, backend))
		createUser(t, store, userID1, "alice")

		got, err := store.GetUser(t.Context(), userID1)
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		compareClaims(t, "GetUser", got, &storage.User{})
		if claim := got.AddressClaim(); claim != nil {
			t.Errorf("AddressClaim = %v, expected nil for a user without an address", claim)
		}
	})

	t.Run("claims round-trip through every read", func(t *testing.T) {
		store := storage.NewStore(storagetest.NewDatabaseOn(t, backend))
		ctx := t.Context()
		want := withAllClaims(newTestUser(userID1, "alice"))
		if err := store.CreateUser(ctx, want); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}

		byID, err := store.GetUser(ctx, userID1)
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		compareClaims(t, "GetUser", byID, want)

		byUsername, err := store.GetUserByUsername(ctx, "alice")
		if err != nil {
			t.Fatalf("GetUserByUsername: %v", err)
		}
		compareClaims(t, "GetUserByUsername", byUsername, want)

		listed, err := store.ListUsers(ctx, "", "", 10)
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		if len(listed) != 1 {
			t.Fatalf("ListUsers returned %d users, expected 1", len(listed))
		}
		compareClaims(t, "ListUsers", listed[0], want)

		err = store.InTx(ctx, func(ctx context.Context) error {
			locked, err := store.GetUserForUpdate(ctx, userID1)
			if err != nil {
				return err
			}
			compareClaims(t, "GetUserForUpdate", locked, want)
			return nil
		})
		if err != nil {
			t.Fatalf("GetUserForUpdate: %v", err)
		}
	})

	t.Run("update writes and clears claims", func(t *testing.T) {
		db := storagetest.NewDatabaseOn(t, backend)
		store := storage.NewStore(db)
		ctx := t.Context()
		createUser(t, store, userID1, "alice")
		other := withAllClaims(createUser(t, store, userID2, "bob"))
		if err := store.UpdateUser(ctx, other); err != nil {
			t.Fatalf("UpdateUser(bob): %v", err)
		}

		// A timestamp well in the past shows that UpdateUser moves it,
		// even when the update runs within the second of the creation.
		past := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		if err := db.DB.Exec("UPDATE users SET updated_at = ? WHERE id = ?", past, userID1).Error; err != nil {
			t.Fatalf("set updated_at: %v", err)
		}

		user, err := store.GetUser(ctx, userID1)
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		withAllClaims(user)
		before := time.Now().UTC().Truncate(time.Second)
		if err := store.UpdateUser(ctx, user); err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		got, err := store.GetUser(ctx, userID1)
		if err != nil {
			t.Fatalf("GetUser after update: %v", err)
		}
		compareClaims(t, "GetUser after update", got, user)
		if got.UpdatedAt.Before(before) {
			t.Errorf("UpdatedAt = %v after the update, expected %v or later", got.UpdatedAt, before)
		}
		if got.AddressClaim() == nil {
			t.Errorf("AddressClaim = nil after setting an address")
		}

		got.Address = storage.Address{}
		got.Birthdate = ""
		got.Website = ""
		if err := store.UpdateUser(ctx, got); err != nil {
			t.Fatalf("UpdateUser(cleared): %v", err)
		}
		cleared, err := store.GetUser(ctx, userID1)
		if err != nil {
			t.Fatalf("GetUser after clearing: %v", err)
		}
		compareClaims(t, "GetUser after clearing", cleared, got)
		if claim := cleared.AddressClaim(); claim != nil {
			t.Errorf("AddressClaim = %v after clearing the address, expected nil", claim)
		}

		unchanged, err := store.GetUser(ctx, userID2)
		if err != nil {
			t.Fatalf("GetUser(bob): %v", err)
		}
		compareClaims(t, "other user", unchanged, other)
	})
}

func TestAddressClaimHoldsSetMembers(t *testing.T) {
	user := &storage.User{Address: storage.Address{Locality: "Oxford", Country: "United Kingdom"}}

	got := user.AddressClaim()
	want := map[string]any{"locality": "Oxford", "country": "United Kingdom"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AddressClaim = %v, expected %v", got, want)
	}

	full := withAllClaims(&storage.User{}).AddressClaim()
	for _, member := range []string{"formatted", "street_address", "locality", "region", "postal_code", "country"} {
		if value, ok := full[member].(string); !ok || value == "" {
			t.Errorf("AddressClaim()[%q] = %#v, expected a non-empty string", member, full[member])
		}
	}
	if len(full) != 6 {
		t.Errorf("AddressClaim has %d members, expected 6: %v", len(full), full)
	}
}

func TestCheckBirthdate(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		value string
		valid bool
	}{
		{"", true},
		{"1990-04-23", true},
		{"1850-01-01", true},
		{"2026-12-31", true},
		{"0000-04-23", true},
		{"0000-02-29", true},
		{"1990", true},
		{"2026", true},
		{"1849-12-31", false},
		{"1849", false},
		{"2027-01-01", false},
		{"2027", false},
		{"0000", false},
		{"1990-02-30", false},
		{"1991-02-29", false},
		{"1990-13-01", false},
		{"0000-00-10", false},
		{"1990-4-23", false},
		{"90-04-23", false},
		{"1990-04", false},
		{"1990/04/23", false},
		{" 1990-04-23", false},
		{"1990-04-23T00:00:00Z", false},
		{"١٩٩٠", false}, // Arabic-Indic digits
	}
	for _, tc := range cases {
		err := storage.CheckBirthdate(tc.value, now)
		if tc.valid && err != nil {
			t.Errorf("CheckBirthdate(%q) = %v, expected nil", tc.value, err)
		}
		if !tc.valid && err == nil {
			t.Errorf("CheckBirthdate(%q) = nil, expected an error", tc.value)
		}
	}
}

func TestCheckBirthdateNamesYearRange(t *testing.T) {
	err := storage.CheckBirthdate("2031", time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC))
	if err == nil || !strings.Contains(err.Error(), "1850 to 2030") {
		t.Errorf("CheckBirthdate(2031) in 2030 = %v, expected an error naming 1850 to 2030", err)
	}
}

func TestCheckWebURL(t *testing.T) {
	cases := []struct {
		value string
		valid bool
	}{
		{"", true},
		{"https://alice.example.org/", true},
		{"http://127.0.0.1:8080/profile?tab=about", true},
		{"javascript:alert(1)", false},
		{"ftp://files.example.com/alice", false},
		{"//alice.example.org/", false},
		{"/profile", false},
		{"https://", false},
		{"https://user:pass@alice.example.org/", false},
		{"https://alice.example.org/" + strings.Repeat("a", storage.MaxURLLength), false},
	}
	for _, tc := range cases {
		err := storage.CheckWebURL(tc.value)
		if tc.valid && err != nil {
			t.Errorf("CheckWebURL(%q) = %v, expected nil", tc.value, err)
		}
		if !tc.valid && err == nil {
			t.Errorf("CheckWebURL(%q) = nil, expected an error", tc.value)
		}
	}
}

func TestCleanClaimTextTrimsAndRejects(t *testing.T) {
	got, err := storage.CleanClaimText("  Al  ", 10)
	if err != nil || got != "Al" {
		t.Errorf(`CleanClaimText("  Al  ") = %q, %v; expected "Al", nil`, got, err)
	}
	for _, bad := range []string{"A\nl", "A\x00l", "A\x1bl", "\xff\xfe", strings.Repeat("x", 11)} {
		if got, err := storage.CleanClaimText(bad, 10); err == nil {
			t.Errorf("CleanClaimText(%q) = %q, nil; expected an error", bad, got)
		}
	}
}

func TestCleanGenderAcceptsOtherValues(t *testing.T) {
	for _, value := range []string{"female", "male", "non-binary", ""} {
		if got, err := storage.CleanGender(value); err != nil || got != value {
			t.Errorf("CleanGender(%q) = %q, %v; expected it unchanged", value, got, err)
		}
	}
	if _, err := storage.CleanGender(strings.Repeat("g", storage.MaxGenderLength+1)); err == nil {
		t.Errorf("CleanGender accepted %d bytes, expected at most %d", storage.MaxGenderLength+1, storage.MaxGenderLength)
	}
}

func TestCleanAddressMember(t *testing.T) {
	cases := []struct {
		member, value string
		valid         bool
	}{
		{"formatted", "7 Christ Church Lane\nOxford", true},
		{"formatted", "7 Christ Church Lane\r\nOxford", true},
		{"street_address", "7 Christ Church Lane\nFlat 2", true},
		{"locality", "Oxford", true},
		{"country", "", true},
		{"locality", "Ox\nford", false},
		{"region", "Oxford\tshire", false},
		{"formatted", "7 Christ\x00Church Lane", false},
		{"postal_code", strings.Repeat("1", storage.MaxAddressMemberLength+1), false},
		{"street_address", strings.Repeat("s", storage.MaxAddressLength+1), false},
		{"planet", "Earth", false},
	}
	for _, tc := range cases {
		_, err := storage.CleanAddressMember(tc.member, tc.value)
		if tc.valid && err != nil {
			t.Errorf("CleanAddressMember(%q, %q) = %v, expected nil", tc.member, tc.value, err)
		}
		if !tc.valid && err == nil {
			t.Errorf("CleanAddressMember(%q, %q) = nil, expected an error", tc.member, tc.value)
		}
	}
}
