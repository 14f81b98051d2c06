package userapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/mail"
	"reflect"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/latchkey/latchkey/storage"
)

// userJSON is a user as the API shows it, with OpenID Connect claim names.
type userJSON struct {
	ID                  string      `json:"id"`
	Username            string      `json:"username"`
	Email               string      `json:"email"`
	EmailVerified       bool        `json:"email_verified"`
	Name                string      `json:"name"`
	GivenName           string      `json:"given_name"`
	FamilyName          string      `json:"family_name"`
	PreferredUsername   string      `json:"preferred_username"`
	Picture             string      `json:"picture"`
	Locale              string      `json:"locale"`
	Zoneinfo            string      `json:"zoneinfo"`
	PhoneNumber         string      `json:"phone_number"`
	PhoneNumberVerified bool        `json:"phone_number_verified"`
	MiddleName          string      `json:"middle_name"`
	Nickname            string      `json:"nickname"`
	Profile             string      `json:"profile"`
	Website             string      `json:"website"`
	Gender              string      `json:"gender"`
	Birthdate           string      `json:"birthdate"`
	Address             addressJSON `json:"address"`
	Disabled            bool        `json:"disabled"`
	CreatedAt           time.Time   `json:"created_at"`
	UpdatedAt           time.Time   `json:"updated_at"`
}

// toUserJSON shows preferred_username as the ID token does: the username
// when none is set.
func toUserJSON(u *storage.User) userJSON {
	preferred := u.PreferredUsername
	if preferred == "" {
		preferred = u.Username
	}
	return userJSON{
		ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		GivenName: u.GivenName, FamilyName: u.FamilyName, PreferredUsername: preferred,
		Picture: u.Picture, Locale: u.Locale, Zoneinfo: u.Zoneinfo, PhoneNumber: u.PhoneNumber,
		PhoneNumberVerified: u.PhoneNumberVerified, MiddleName: u.MiddleName, Nickname: u.Nickname,
		Profile: u.Profile, Website: u.Website, Gender: u.Gender, Birthdate: u.Birthdate,
		Address: addressJSON(u.Address), Disabled: u.Disabled, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

// addressJSON is the address claim (OpenID Connect Core §5.1.1). In a PATCH
// body it replaces the whole stored address. Members left out become empty,
// so {} clears it.
type addressJSON struct {
	Formatted     string `json:"formatted"`
	StreetAddress string `json:"street_address"`
	Locality      string `json:"locality"`
	Region        string `json:"region"`
	PostalCode    string `json:"postal_code"`
	Country       string `json:"country"`
}

// profilePatch is a PATCH body: absent fields stay as they are. Admin-only
// fields are rejected on /v1/me by the caller.
type profilePatch struct {
	Username            *string      `json:"username"`
	Email               *string      `json:"email"`
	EmailVerified       *bool        `json:"email_verified"`
	Name                *string      `json:"name"`
	GivenName           *string      `json:"given_name"`
	FamilyName          *string      `json:"family_name"`
	PreferredUsername   *string      `json:"preferred_username"`
	Picture             *string      `json:"picture"`
	Locale              *string      `json:"locale"`
	Zoneinfo            *string      `json:"zoneinfo"`
	PhoneNumber         *string      `json:"phone_number"`
	PhoneNumberVerified *bool        `json:"phone_number_verified"`
	MiddleName          *string      `json:"middle_name"`
	Nickname            *string      `json:"nickname"`
	Profile             *string      `json:"profile"`
	Website             *string      `json:"website"`
	Gender              *string      `json:"gender"`
	Birthdate           *string      `json:"birthdate"`
	Address             *addressJSON `json:"address"`
}

// decodeJSON reads a JSON object into target, rejecting unknown fields and
// trailing data. On failure it has written a 400 problem.
func decodeJSON(c *gin.Context, target any) bool {
	if mediaType := strings.TrimSpace(strings.Split(c.GetHeader("Content-Type"), ";")[0]); mediaType != "application/json" {
		writeProblem(c, http.StatusUnsupportedMediaType, "Unsupported media type", "Send the body as application/json.")
		return false
	}
	decoder := json.NewDecoder(c.Request.Body)
	decoder.DisallowUnknownFields()
	var raw json.RawMessage
	err := decoder.Decode(&raw)
	if err == nil && decoder.Decode(&struct{}{}) != io.EOF {
		err = errors.New("the body contains more than one JSON value")
	}
	if err == nil && !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		writeProblem(c, http.StatusBadRequest, "Invalid request", "The body must be a JSON object.")
		return false
	}
	if err == nil {
		strict := json.NewDecoder(bytes.NewReader(raw))
		strict.DisallowUnknownFields()
		err = strict.Decode(target)
	}
	if err == nil {
		return true
	}

	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeProblem(c, http.StatusRequestEntityTooLarge, "Request body too large", "")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		writeProblem(c, http.StatusBadRequest, "Invalid request", "Unknown field.", fieldError{Field: field, Detail: "unknown field"})
	default:
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			writeProblem(c, http.StatusBadRequest, "Invalid request", "A field has the wrong type.",
				fieldError{Field: typeErr.Field, Detail: "must be " + jsonKind(typeErr.Type.Kind())})
			return false
		}
		writeProblem(c, http.StatusBadRequest, "Invalid request", "The body is not a valid JSON object.")
	}
	return false
}

// Field limits, in bytes.
const (
	maxNameLength     = storage.MaxNameLength
	maxUsernameLength = 64
)

// apply validates a patch and applies it to user, collecting every invalid
// field. Changing the email address marks it unverified unless the patch
// also sets email_verified.
func (p *profilePatch) apply(user *storage.User, errs *fieldErrors) {
	text := func(field string, value *string, max int, target *string) {
		if value == nil {
			return
		}
		cleaned, err := storage.CleanClaimText(*value, max)
		if err != nil {
			errs.add(field, err.Error())
			return
		}
		*target = cleaned
	}
	text("name", p.Name, maxNameLength, &user.Name)
	text("given_name", p.GivenName, maxNameLength, &user.GivenName)
	text("family_name", p.FamilyName, maxNameLength, &user.FamilyName)
	text("middle_name", p.MiddleName, maxNameLength, &user.MiddleName)
	text("nickname", p.Nickname, maxNameLength, &user.Nickname)
	text("preferred_username", p.PreferredUsername, maxUsernameLength, &user.PreferredUsername)

	if p.Username != nil {
		username := storage.NormalizeUsername(*p.Username)
		if !storage.ValidUsername(username) {
			errs.add("username", "must be 1 to 64 of a-z, 0-9 and . _ @ -, starting with a letter or digit")
		} else {
			user.Username = username
		}
	}
	if p.Email != nil {
		if address, err := mail.ParseAddress(*p.Email); err != nil || address.Address != strings.TrimSpace(*p.Email) {
			errs.add("email", "is not an email address")
		} else if address.Address != user.Email {
			user.Email = address.Address
			user.EmailVerified = false
		}
	}
	if p.EmailVerified != nil {
		user.EmailVerified = *p.EmailVerified
	}
	webURL := func(field string, value *string, target *string) {
		if value == nil {
			return
		}
		if err := storage.CheckWebURL(*value); err != nil {
			errs.add(field, err.Error())
			return
		}
		*target = *value
	}
	webURL("picture", p.Picture, &user.Picture)
	webURL("profile", p.Profile, &user.Profile)
	webURL("website", p.Website, &user.Website)
	if p.Locale != nil {
		if err := storage.CheckLocale(*p.Locale); err != nil {
			errs.add("locale", err.Error())
		} else {
			user.Locale = *p.Locale
		}
	}
	if p.Zoneinfo != nil {
		if err := storage.CheckZoneinfo(*p.Zoneinfo); err != nil {
			errs.add("zoneinfo", err.Error())
		} else {
			user.Zoneinfo = *p.Zoneinfo
		}
	}
	if p.PhoneNumber != nil {
		if err := storage.CheckPhoneNumber(*p.PhoneNumber); err != nil {
			errs.add("phone_number", err.Error())
		} else if *p.PhoneNumber != user.PhoneNumber {
			user.PhoneNumber = *p.PhoneNumber
			user.PhoneNumberVerified = false
		}
	}
	if p.PhoneNumberVerified != nil {
		user.PhoneNumberVerified = *p.PhoneNumberVerified
	}

	if p.Gender != nil {
		if gender, err := storage.CleanGender(*p.Gender); err != nil {
			errs.add("gender", err.Error())
		} else {
			user.Gender = gender
		}
	}
	if p.Birthdate != nil {
		if err := storage.CheckBirthdate(*p.Birthdate, time.Now()); err != nil {
			errs.add("birthdate", err.Error())
		} else {
			user.Birthdate = *p.Birthdate
		}
	}
	if p.Address != nil {
		if address, ok := p.Address.clean(errs); ok {
			user.Address = address
		}
	}
}

// clean checks every member of an address, adding an error named
// "address.<member>" for each invalid one. It reports whether all are
// valid.
func (a *addressJSON) clean(errs *fieldErrors) (storage.Address, bool) {
	var address storage.Address
	members := []struct {
		name   string
		value  string
		target *string
	}{
		{"formatted", a.Formatted, &address.Formatted},
		{"street_address", a.StreetAddress, &address.StreetAddress},
		{"locality", a.Locality, &address.Locality},
		{"region", a.Region, &address.Region},
		{"postal_code", a.PostalCode, &address.PostalCode},
		{"country", a.Country, &address.Country},
	}
	valid := true
	for _, member := range members {
		cleaned, err := storage.CleanAddressMember(member.name, member.value)
		if err != nil {
			errs.add("address."+member.name, err.Error())
			valid = false
			continue
		}
		*member.target = cleaned
	}
	return address, valid
}

// jsonKind names the JSON type that carries values of a Go kind.
func jsonKind(kind reflect.Kind) string {
	switch kind {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return "a number"
	}
}
