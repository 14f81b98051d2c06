package userapi_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// addressBody is the address claim as the API returns it.
type addressBody struct {
	Formatted     string `json:"formatted"`
	StreetAddress string `json:"street_address"`
	Locality      string `json:"locality"`
	Region        string `json:"region"`
	PostalCode    string `json:"postal_code"`
	Country       string `json:"country"`
}

// claimsBody is the part of a user, as the API returns it, that contains
// middle_name, nickname, profile, website, gender, birthdate and address.
type claimsBody struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	MiddleName string      `json:"middle_name"`
	Nickname   string      `json:"nickname"`
	Profile    string      `json:"profile"`
	Website    string      `json:"website"`
	Gender     string      `json:"gender"`
	Birthdate  string      `json:"birthdate"`
	Address    addressBody `json:"address"`
	UpdatedAt  time.Time   `json:"updated_at"`
}

// claimsPatch sets every claim of claimsBody. The nickname has spaces
// around it, which the API trims.
var claimsPatch = map[string]any{
	"middle_name": "Inés",
	"nickname":    "  Clo  ",
	"profile":     "https://people.example.com/clara",
	"website":     "http://clara.example.org/blog",
	"gender":      "non-binary",
	"birthdate":   "0000-02-29",
	"address": map[string]string{
		"formatted":      "12 rue de la République\n69002 Lyon\nFrance",
		"street_address": "12 rue de la République\nBâtiment B",
		"locality":       "Lyon",
		"region":         "Auvergne-Rhône-Alpes",
		"postal_code":    "69002",
		"country":        "France",
	},
}

// wantClaims is claimsBody after claimsPatch.
var wantClaims = claimsBody{
	MiddleName: "Inés",
	Nickname:   "Clo",
	Profile:    "https://people.example.com/clara",
	Website:    "http://clara.example.org/blog",
	Gender:     "non-binary",
	Birthdate:  "0000-02-29",
	Address: addressBody{
		Formatted:     "12 rue de la République\n69002 Lyon\nFrance",
		StreetAddress: "12 rue de la République\nBâtiment B",
		Locality:      "Lyon",
		Region:        "Auvergne-Rhône-Alpes",
		PostalCode:    "69002",
		Country:       "France",
	},
}

// checkClaims compares the claims of got with want, one field at a time.
func checkClaims(t *testing.T, source string, got, want claimsBody) {
	t.Helper()
	fields := []struct {
		name      string
		got, want any
	}{
		{"middle_name", got.MiddleName, want.MiddleName},
		{"nickname", got.Nickname, want.Nickname},
		{"profile", got.Profile, want.Profile},
		{"website", got.Website, want.Website},
		{"gender", got.Gender, want.Gender},
		{"birthdate", got.Birthdate, want.Birthdate},
		{"address", got.Address, want.Address},
	}
	for _, field := range fields {
		if field.got != field.want {
			t.Errorf("%s: %s = %#v, expected %#v", source, field.name, field.got, field.want)
		}
	}
}

// getClaims reads a user's claims from path with accessToken.
func getClaims(t *testing.T, env *testEnv, accessToken, path string) claimsBody {
	t.Helper()
	response := env.call(t, accessToken, http.MethodGet, path, nil)
	response.ExpectStatus(t, http.StatusOK)
	var body claimsBody
	response.Decode(t, &body)
	return body
}

func TestOwnProfileClaimsEditAndRead(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	user, password := env.createUser(t, "clara")
	token := env.signIn(t, env.newBrowser(t), "clara", password, "openid", "account", "profile")

	// updated_at has a resolution of one second, so the edit waits for the
	// second after the creation to show that it moves.
	time.Sleep(time.Until(user.UpdatedAt.Add(time.Second)))

	patched := env.call(t, token.AccessToken, http.MethodPatch, "/v1/me", claimsPatch)
	patched.ExpectStatus(t, http.StatusOK)
	var fromPatch claimsBody
	patched.Decode(t, &fromPatch)
	checkClaims(t, "PATCH /v1/me response", fromPatch, wantClaims)
	if !fromPatch.UpdatedAt.After(user.UpdatedAt) {
		t.Errorf("updated_at = %v after the edit, expected later than the creation at %v", fromPatch.UpdatedAt, user.UpdatedAt)
	}

	fromGet := getClaims(t, env, token.AccessToken, "/v1/me")
	checkClaims(t, "GET /v1/me", fromGet, wantClaims)
	if !fromGet.UpdatedAt.Equal(fromPatch.UpdatedAt) {
		t.Errorf("GET /v1/me updated_at = %v, expected %v from the PATCH response", fromGet.UpdatedAt, fromPatch.UpdatedAt)
	}
	fromAdmin := getClaims(t, env, adminToken.AccessToken, "/v1/users/"+user.ID)
	checkClaims(t, "GET /v1/users/{id}", fromAdmin, wantClaims)

	claims := env.userinfo(t, token.AccessToken)
	if updatedAt, _ := claims["updated_at"].(float64); int64(updatedAt) != fromPatch.UpdatedAt.Unix() {
		t.Errorf("userinfo updated_at = %v, expected %d", claims["updated_at"], fromPatch.UpdatedAt.Unix())
	}

	stored, err := env.store.GetUser(t.Context(), user.ID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if stored.Address.Locality != "Lyon" || stored.Birthdate != "0000-02-29" || stored.Nickname != "Clo" {
		t.Errorf("stored user = %+v, expected the patched claims", stored)
	}
}

func TestAddressPatchReplacesWholeAddress(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	user := env.createListedUser(t, "dora", "Dora Marsden")
	path := "/v1/users/" + user.ID

	full := env.call(t, adminToken.AccessToken, http.MethodPatch, path, claimsPatch)
	full.ExpectStatus(t, http.StatusOK)
	var afterFull claimsBody
	full.Decode(t, &afterFull)
	checkClaims(t, "admin PATCH with every claim", afterFull, wantClaims)

	// Other fields leave the address as it is.
	renamed := env.call(t, adminToken.AccessToken, http.MethodPatch, path, map[string]any{"name": "Dora M."})
	renamed.ExpectStatus(t, http.StatusOK)
	var afterRename claimsBody
	renamed.Decode(t, &afterRename)
	if afterRename.Address != wantClaims.Address {
		t.Errorf("address = %+v after a PATCH without it, expected it unchanged", afterRename.Address)
	}

	partial := env.call(t, adminToken.AccessToken, http.MethodPatch, path, map[string]any{
		"address": map[string]string{"locality": " Grenoble ", "country": "France"},
	})
	partial.ExpectStatus(t, http.StatusOK)
	var afterPartial claimsBody
	partial.Decode(t, &afterPartial)
	wantPartial := addressBody{Locality: "Grenoble", Country: "France"}
	if afterPartial.Address != wantPartial {
		t.Errorf("address = %+v after a PATCH with two members, expected %+v", afterPartial.Address, wantPartial)
	}

	cleared := env.call(t, adminToken.AccessToken, http.MethodPatch, path, map[string]any{
		"address": map[string]string{}, "birthdate": "", "website": "", "gender": "",
	})
	cleared.ExpectStatus(t, http.StatusOK)
	var afterClear claimsBody
	cleared.Decode(t, &afterClear)
	if afterClear.Address != (addressBody{}) {
		t.Errorf("address = %+v after a PATCH with {}, expected every member empty", afterClear.Address)
	}
	if afterClear.Birthdate != "" || afterClear.Website != "" || afterClear.Gender != "" {
		t.Errorf("birthdate %q, website %q, gender %q after setting them empty, expected all empty",
			afterClear.Birthdate, afterClear.Website, afterClear.Gender)
	}
	if afterClear.Nickname != wantClaims.Nickname {
		t.Errorf("nickname = %q after a PATCH without it, expected %q", afterClear.Nickname, wantClaims.Nickname)
	}

	events := listAuditEvents(t, env, adminToken.AccessToken, "action=user.updated&subject="+user.ID)
	if len(events) != 4 {
		t.Fatalf("user.updated events = %s, expected 4", describeEvents(events))
	}
	var fields []string
	for _, field := range events[len(events)-1].Details["fields"].([]any) {
		fields = append(fields, field.(string))
	}
	wantFields := []string{"address", "birthdate", "gender", "middle_name", "nickname", "profile", "website"}
	if !slices.Equal(fields, wantFields) {
		t.Errorf("first user.updated event fields = %v, expected %v", fields, wantFields)
	}
}

func TestAdminCreatesUserWithClaims(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")

	body := map[string]any{"username": "erin", "email": "erin@example.com", "password": "a long enough password"}
	for name, value := range claimsPatch {
		body[name] = value
	}
	body["birthdate"] = "1990-04-23"
	created := env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/users", body)
	created.ExpectStatus(t, http.StatusCreated)
	var fromCreate claimsBody
	created.Decode(t, &fromCreate)

	want := wantClaims
	want.Birthdate = "1990-04-23"
	checkClaims(t, "POST /v1/users response", fromCreate, want)
	checkClaims(t, "GET /v1/users/{id}", getClaims(t, env, adminToken.AccessToken, "/v1/users/"+fromCreate.ID), want)
}

func TestBirthdateFormsAreAccepted(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, password := env.createUser(t, "fay")
	token := env.signIn(t, env.newBrowser(t), "fay", password, "openid", "account")

	currentYear := strconv.Itoa(time.Now().UTC().Year())
	for _, birthdate := range []string{"1850-01-01", "1990-04-23", "0000-12-31", "1990", currentYear, ""} {
		response := env.call(t, token.AccessToken, http.MethodPatch, "/v1/me", map[string]any{"birthdate": birthdate})
		response.ExpectStatus(t, http.StatusOK)
		var body claimsBody
		response.Decode(t, &body)
		if body.Birthdate != birthdate {
			t.Errorf("birthdate = %q after setting %q", body.Birthdate, birthdate)
		}
	}
}

func TestInvalidClaimsNameEachField(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	user, password := env.createUser(t, "gil")
	token := env.signIn(t, env.newBrowser(t), "gil", password, "openid", "account")

	nextYear := strconv.Itoa(time.Now().UTC().Year() + 1)
	cases := []struct {
		name       string
		body       map[string]any
		wantFields []string
	}{
		{"birthdate in another format", map[string]any{"birthdate": "23/04/1990"}, []string{"birthdate"}},
		{"birthdate with time", map[string]any{"birthdate": "1990-04-23T00:00:00Z"}, []string{"birthdate"}},
		{"birthdate before 1850", map[string]any{"birthdate": "1849-12-31"}, []string{"birthdate"}},
		{"birthdate next year", map[string]any{"birthdate": nextYear}, []string{"birthdate"}},
		{"birthdate not in the calendar", map[string]any{"birthdate": "1990-02-30"}, []string{"birthdate"}},
		{"year zero alone", map[string]any{"birthdate": "0000"}, []string{"birthdate"}},
		{"birthdate as number", map[string]any{"birthdate": 1990}, []string{"birthdate"}},
		{"URLs not http", map[string]any{"profile": "ftp://files.example.com/gil", "website": "javascript:alert(1)"},
			[]string{"profile", "website"}},
		{"relative website", map[string]any{"website": "/gil"}, []string{"website"}},
		{"website with credentials", map[string]any{"website": "https://gil:secret@example.com/"}, []string{"website"}},
		{"gender too long", map[string]any{"gender": strings.Repeat("g", 65)}, []string{"gender"}},
		{"gender on two lines", map[string]any{"gender": "fe\nmale"}, []string{"gender"}},
		{"names with control characters or too long", map[string]any{
			"middle_name": "Jo\u0007", "nickname": strings.Repeat("n", 201),
		}, []string{"middle_name", "nickname"}},
		{"address members invalid", map[string]any{"address": map[string]any{
			"locality": "Ly\non", "country": strings.Repeat("c", 201), "formatted": "ok\nlines",
		}}, []string{"address.country", "address.locality"}},
		{"address member not a string", map[string]any{"address": map[string]any{"country": 5}}, []string{"address.country"}},
		{"address not an object", map[string]any{"address": "12 rue de la République"}, []string{"address"}},
		{"unknown address member", map[string]any{"address": map[string]any{"planet": "Mars"}}, nil},
		{"valid and invalid claims together", map[string]any{"nickname": "Gil", "birthdate": "1990-4-23"}, []string{"birthdate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, route := range []struct{ token, path string }{
				{token.AccessToken, "/v1/me"},
				{adminToken.AccessToken, "/v1/users/" + user.ID},
			} {
				response := env.call(t, route.token, http.MethodPatch, route.path, tc.body)
				fields := response.Problem(t, http.StatusBadRequest).Fields()
				if tc.wantFields != nil && !slices.Equal(fields, tc.wantFields) {
					t.Errorf("PATCH %s: problem fields %v, expected %v", route.path, fields, tc.wantFields)
				}
			}
		})
	}

	// None of the rejected requests changed the account.
	after := getClaims(t, env, token.AccessToken, "/v1/me")
	checkClaims(t, "GET /v1/me after rejected requests", after, claimsBody{})
	if !after.UpdatedAt.Equal(user.UpdatedAt) {
		t.Errorf("updated_at = %v after rejected requests, expected the unchanged %v", after.UpdatedAt, user.UpdatedAt)
	}
}
