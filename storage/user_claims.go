package storage

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zoneinfo values are checked against the embedded time zone database
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"
)

// This file checks the values of the standard claims a user can set
// (OpenID Connect Core 1.0 §5.1), so that the user API and the CLI accept
// the same values. Every check accepts the empty string, which means the
// claim is not set.

// Address is a postal address, released as the "address" claim (OpenID
// Connect Core 1.0 §5.1.1). Formatted and StreetAddress may span several
// lines, separated by "\n" or "\r\n".
type Address struct {
	Formatted     string
	StreetAddress string
	Locality      string
	Region        string
	PostalCode    string
	Country       string
}

// Claim returns the members of the address claim that are set, or nil when
// none is.
func (a Address) Claim() map[string]any {
	claim := map[string]any{}
	for name, value := range map[string]string{
		"formatted": a.Formatted, "street_address": a.StreetAddress, "locality": a.Locality,
		"region": a.Region, "postal_code": a.PostalCode, "country": a.Country,
	} {
		if value != "" {
			claim[name] = value
		}
	}
	if len(claim) == 0 {
		return nil
	}
	return claim
}

// AddressClaim returns the "address" claim of u, an object of strings, or
// nil when u has no address.
func (u *User) AddressClaim() map[string]any {
	return u.Address.Claim()
}

// Maximum lengths of claim values, in bytes.
const (
	MaxNameLength          = 200
	MaxURLLength           = 2048
	MaxGenderLength        = 64
	MaxAddressLength       = 1024 // formatted and street_address, which may span lines
	MaxAddressMemberLength = 200  // locality, region, postal_code and country
)

// CleanClaimText trims the spaces around a one-line claim value and checks
// that the rest is valid UTF-8 of at most maxBytes bytes without control
// characters.
func CleanClaimText(value string, maxBytes int) (string, error) {
	return cleanClaimText(value, maxBytes, false)
}

func cleanClaimText(value string, maxBytes int, multiline bool) (string, error) {
	value = strings.TrimSpace(value)
	if len(value) > maxBytes {
		return "", fmt.Errorf("is too long: the maximum is %d bytes", maxBytes)
	}
	if !utf8.ValidString(value) {
		return "", errors.New("is not valid UTF-8")
	}
	control := func(r rune) bool {
		if multiline && (r == '\n' || r == '\r') {
			return false
		}
		return unicode.IsControl(r)
	}
	if strings.ContainsFunc(value, control) {
		if multiline {
			return "", errors.New("must not contain control characters other than line breaks")
		}
		return "", errors.New("must not contain control characters")
	}
	return value, nil
}

// CleanGender trims and checks a gender claim. OpenID Connect defines
// "female" and "male" and allows other values, so any short line of text is
// accepted.
func CleanGender(value string) (string, error) {
	return cleanClaimText(value, MaxGenderLength, false)
}

// CleanAddressMember trims and checks one member of the address claim. The
// member is named as in the claim: "formatted", "street_address",
// "locality", "region", "postal_code" or "country".
func CleanAddressMember(member, value string) (string, error) {
	switch member {
	case "formatted", "street_address":
		return cleanClaimText(value, MaxAddressLength, true)
	case "locality", "region", "postal_code", "country":
		return cleanClaimText(value, MaxAddressMemberLength, false)
	default:
		return "", fmt.Errorf("%q is not a member of the address claim", member)
	}
}

// CheckWebURL checks a URL claim such as picture, profile or website. It
// must be an absolute https or http URL of at most MaxURLLength bytes,
// without a user name or password.
func CheckWebURL(raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > MaxURLLength {
		return fmt.Errorf("is too long: the maximum is %d bytes", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute https or http URL")
	}
	if u.User != nil {
		return errors.New("must not contain a user name or password")
	}
	return nil
}

// MinBirthYear is the earliest year a birthdate may have.
const MinBirthYear = 1850

var birthdatePattern = regexp.MustCompile(`^([0-9]{4})(?:-([0-9]{2})-([0-9]{2}))?$`)

// CheckBirthdate checks a birthdate claim in one of the three forms OpenID
// Connect Core 1.0 §5.1 allows: YYYY-MM-DD, 0000-MM-DD (year withheld) or
// YYYY (year only). The date must exist in the calendar and the year must
// be from MinBirthYear to the current year in UTC at now.
func CheckBirthdate(value string, now time.Time) error {
	if value == "" {
		return nil
	}
	match := birthdatePattern.FindStringSubmatch(value)
	if match == nil {
		return errors.New("must be YYYY-MM-DD, 0000-MM-DD or YYYY, such as 1990-04-23")
	}
	year, _ := strconv.Atoi(match[1])
	hasDay := match[2] != ""

	if hasDay {
		// A withheld year is checked as leap year 2000, so that 0000-02-29
		// is accepted.
		calendarYear := year
		if year == 0 {
			calendarYear = 2000
		}
		date := fmt.Sprintf("%04d-%s-%s", calendarYear, match[2], match[3])
		if _, err := time.Parse(time.DateOnly, date); err != nil {
			return errors.New("is not a date in the calendar")
		}
	}
	if year == 0 && hasDay {
		return nil
	}
	if currentYear := now.UTC().Year(); year < MinBirthYear || year > currentYear {
		return fmt.Errorf("must have a year from %d to %d", MinBirthYear, currentYear)
	}
	return nil
}

// phonePattern is an E.164 telephone number, as the phone_number claim
// should be (OpenID Connect Core §5.1).
var phonePattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// CheckPhoneNumber accepts an empty value or an E.164 number such as
// +14155550100.
func CheckPhoneNumber(value string) error {
	if value != "" && !phonePattern.MatchString(value) {
		return errors.New("must be in E.164 form, such as +14155550100")
	}
	return nil
}

// CheckLocale accepts an empty value or a BCP 47 language tag.
func CheckLocale(value string) error {
	if _, err := language.Parse(value); value != "" && err != nil {
		return errors.New("is not a BCP 47 language tag, such as en-US")
	}
	return nil
}

// CheckZoneinfo accepts an empty value or an IANA time zone name. Names
// that could reach outside the time zone database, and "Local", are not
// time zones.
func CheckZoneinfo(value string) error {
	if value == "" {
		return nil
	}
	if strings.Contains(value, "..") || strings.HasPrefix(value, "/") || value == "Local" {
		return errors.New("is not an IANA time zone, such as Europe/Paris")
	}
	if _, err := time.LoadLocation(value); err != nil {
		return errors.New("is not an IANA time zone, such as Europe/Paris")
	}
	return nil
}
