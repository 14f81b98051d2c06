package userapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata"
	"unicode"
	"unicode/utf8" // zoneinfo values are checked against the embedded time zone database

	"github.com/gin-gonic/gin"
	"golang.org/x/text/language"

	"github.com/latchkey/latchkey/storage"
)

// userJSON is a user as the API shows it, with OpenID Connect claim names.
type userJSON struct {
	ID                  string    `json:"id"`
	Username            string    `json:"username"`
	Email               string    `json:"email"`
	EmailVerified       bool      `json:"email_verified"`
	Name                string    `json:"name"`
	GivenName           string    `json:"given_name"`
	FamilyName          string    `json:"family_name"`
	PreferredUsername   string    `json:"preferred_username"`
	Picture             string    `json:"picture"`
	Locale              string    `json:"locale"`
	Zoneinfo            string    `json:"zoneinfo"`
	PhoneNumber         string    `json:"phone_number"`
	PhoneNumberVerified bool      `json:"phone_number_verified"`
	Disabled            bool      `json:"disabled"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
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
		PhoneNumberVerified: u.PhoneNumberVerified, Disabled: u.Disabled, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

// profilePatch is a PATCH body: absent fields stay as they are. Admin-only
// fields are rejected on /v1/me by the caller.
type profilePatch struct {
	Username            *string `json:"username"`
	Email               *string `json:"email"`
	EmailVerified       *bool   `json:"email_verified"`
	Name                *string `json:"name"`
	GivenName           *string `json:"given_name"`
	FamilyName          *string `json:"family_name"`
	PreferredUsername   *string `json:"preferred_username"`
	Picture             *string `json:"picture"`
	Locale              *string `json:"locale"`
	Zoneinfo            *string `json:"zoneinfo"`
	PhoneNumber         *string `json:"phone_number"`
	PhoneNumberVerified *bool   `json:"phone_number_verified"`
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
	maxNameLength     = 200
	maxUsernameLength = 64
	maxURLLength      = 2048
)

var phonePattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// apply validates a patch and applies it to user, collecting every invalid
// field. Changing the email address marks it unverified unless the patch
// also sets email_verified.
func (p *profilePatch) apply(user *storage.User, errs *fieldErrors) {
	text := func(field string, value *string, max int, target *string) {
		if value == nil {
			return
		}
		if len(*value) > max {
			errs.add(field, "is too long")
			return
		}
		if strings.ContainsFunc(*value, unicode.IsControl) || !utf8.ValidString(*value) {
			errs.add(field, "must not contain control characters")
			return
		}
		*target = strings.TrimSpace(*value)
	}
	text("name", p.Name, maxNameLength, &user.Name)
	text("given_name", p.GivenName, maxNameLength, &user.GivenName)
	text("family_name", p.FamilyName, maxNameLength, &user.FamilyName)
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
	if p.Picture != nil {
		if *p.Picture != "" && !isWebURL(*p.Picture) {
			errs.add("picture", "must be an absolute https or http URL")
		} else {
			user.Picture = *p.Picture
		}
	}
	if p.Locale != nil {
		if _, err := language.Parse(*p.Locale); *p.Locale != "" && err != nil {
			errs.add("locale", "is not a BCP 47 language tag, such as en-US")
		} else {
			user.Locale = *p.Locale
		}
	}
	if p.Zoneinfo != nil {
		if !isTimeZone(*p.Zoneinfo) {
			errs.add("zoneinfo", "is not an IANA time zone, such as Europe/Paris")
		} else {
			user.Zoneinfo = *p.Zoneinfo
		}
	}
	if p.PhoneNumber != nil {
		if *p.PhoneNumber != "" && !phonePattern.MatchString(*p.PhoneNumber) {
			errs.add("phone_number", "must be in E.164 form, such as +14155550100")
		} else if *p.PhoneNumber != user.PhoneNumber {
			user.PhoneNumber = *p.PhoneNumber
			user.PhoneNumberVerified = false
		}
	}
	if p.PhoneNumberVerified != nil {
		user.PhoneNumberVerified = *p.PhoneNumberVerified
	}
}

func isWebURL(raw string) bool {
	if len(raw) > maxURLLength {
		return false
	}
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}

// isTimeZone accepts "" and IANA zone names. LoadLocation also reads files,
// so names with path elements are rejected first.
func isTimeZone(name string) bool {
	if name == "" {
		return true
	}
	if strings.Contains(name, "..") || strings.HasPrefix(name, "/") || name == "Local" {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
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
