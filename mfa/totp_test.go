package mfa_test

import (
	"bytes"
	"encoding/base32"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/mfa"
)

// rfcSecret is the SHA-1 seed of RFC 6238 Appendix B, "12345678901234567890"
// in ASCII, in base32.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func TestNewEnrollmentURI(t *testing.T) {
	codec := newCodec(t, testKey(1))
	enrollment, err := codec.NewEnrollment("Latchkey", "alice@example.com")
	if err != nil {
		t.Fatalf("NewEnrollment: %v", err)
	}

	uri, err := url.Parse(enrollment.URI)
	if err != nil {
		t.Fatalf("parse URI %q: %v", enrollment.URI, err)
	}
	if uri.Scheme != "otpauth" {
		t.Errorf("URI scheme = %q, want otpauth", uri.Scheme)
	}
	if uri.Host != "totp" {
		t.Errorf("URI host = %q, want totp", uri.Host)
	}
	if uri.Path != "/Latchkey:alice@example.com" {
		t.Errorf("URI label = %q, want /Latchkey:alice@example.com", uri.Path)
	}

	query := uri.Query()
	wantParameters := map[string]string{
		"secret":    enrollment.Secret,
		"issuer":    "Latchkey",
		"algorithm": "SHA1",
		"digits":    "6",
		"period":    "30",
	}
	for name, want := range wantParameters {
		if got := query.Get(name); got != want {
			t.Errorf("URI parameter %s = %q, want %q", name, got, want)
		}
	}
}

func TestNewEnrollmentSecret(t *testing.T) {
	codec := newCodec(t, testKey(1))
	first, err := codec.NewEnrollment("Latchkey", "alice")
	if err != nil {
		t.Fatalf("NewEnrollment: %v", err)
	}
	second, err := codec.NewEnrollment("Latchkey", "alice")
	if err != nil {
		t.Fatalf("NewEnrollment: %v", err)
	}

	if strings.Contains(first.Secret, "=") {
		t.Errorf("secret %q has base32 padding", first.Secret)
	}
	decoded, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(first.Secret)
	if err != nil {
		t.Fatalf("secret %q is not base32: %v", first.Secret, err)
	}
	if len(decoded) != 20 {
		t.Errorf("secret is %d bytes, want 20", len(decoded))
	}
	if first.Secret == second.Secret {
		t.Error("two enrolments got the same secret")
	}
	if _, err := mfa.StepCode(first.Secret, 1); err != nil {
		t.Errorf("StepCode rejects a new secret: %v", err)
	}
}

func TestNewEnrollmentQRCode(t *testing.T) {
	codec := newCodec(t, testKey(1))
	enrollment, err := codec.NewEnrollment("Latchkey", "alice")
	if err != nil {
		t.Fatalf("NewEnrollment: %v", err)
	}

	img, err := png.Decode(bytes.NewReader(enrollment.QRCodePNG))
	if err != nil {
		t.Fatalf("decode QR code PNG: %v", err)
	}
	if size := img.Bounds().Size(); size.X != 256 || size.Y != 256 {
		t.Errorf("QR code is %dx%d pixels, want 256x256", size.X, size.Y)
	}
}

func TestNewEnrollmentRejectsInvalidLabel(t *testing.T) {
	codec := newCodec(t, testKey(1))
	cases := []struct{ name, issuer, accountName string }{
		{"empty issuer", "", "alice"},
		{"empty account name", "Latchkey", ""},
		{"colon in issuer", "Latch:key", "alice"},
		{"colon in account name", "Latchkey", "alice:admin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := codec.NewEnrollment(c.issuer, c.accountName); err == nil {
				t.Errorf("NewEnrollment(%q, %q) succeeded", c.issuer, c.accountName)
			}
		})
	}
}

func TestStepCodeMatchesRFC6238Vectors(t *testing.T) {
	// The SHA-1 rows of RFC 6238 Appendix B, cut to their last six digits.
	vectors := []struct {
		unixTime int64
		code     string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	}
	for _, v := range vectors {
		got, err := mfa.StepCode(rfcSecret, v.unixTime/30)
		if err != nil {
			t.Fatalf("StepCode at %d: %v", v.unixTime, err)
		}
		if got != v.code {
			t.Errorf("StepCode at Unix time %d = %s, want %s", v.unixTime, got, v.code)
		}
	}
}

func TestStepCodeAgreesWithPquernaOTP(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	opts := totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	for _, step := range []int64{0, 1, 56_666_666, 56_666_667, 1 << 33} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*30, 0), opts)
		if err != nil {
			t.Fatalf("totp.GenerateCodeCustom at step %d: %v", step, err)
		}
		got, err := mfa.StepCode(secret, step)
		if err != nil {
			t.Fatalf("StepCode at step %d: %v", step, err)
		}
		if got != want {
			t.Errorf("StepCode at step %d = %s, pquerna/otp gives %s", step, got, want)
		}
	}
}

func TestStepCodeRejectsInvalidInput(t *testing.T) {
	cases := []struct {
		name   string
		secret string
		step   int64
	}{
		{"negative step", rfcSecret, -1},
		{"secret not base32", "not base32!", 1},
		{"empty secret", "", 1},
		{"secret of 80 bits", "JBSWY3DPEHPK3PXP", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code, err := mfa.StepCode(c.secret, c.step); err == nil {
				t.Errorf("StepCode(%q, %d) = %s, want an error", c.secret, c.step, code)
			}
		})
	}
}

func TestMatchTOTPClockDrift(t *testing.T) {
	// now lies in the middle of its step, so that the result does not
	// depend on rounding at a step boundary.
	now := time.Unix(1_700_000_000*30+15, 0)
	current := now.Unix() / 30
	cases := []struct {
		name   string
		offset int64
		want   bool
	}{
		{"two steps early", -2, false},
		{"one step early", -1, true},
		{"current step", 0, true},
		{"one step late", 1, true},
		{"two steps late", 2, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, err := mfa.StepCode(rfcSecret, current+c.offset)
			if err != nil {
				t.Fatal(err)
			}
			step, ok := mfa.MatchTOTP(rfcSecret, code, now)
			if ok != c.want {
				t.Fatalf("MatchTOTP of the code of step %+d: ok = %v, want %v", c.offset, ok, c.want)
			}
			if ok && step != current+c.offset {
				t.Errorf("MatchTOTP returned step %d, want %d", step, current+c.offset)
			}
		})
	}
}

func TestMatchTOTPRejectsWrongCode(t *testing.T) {
	now := time.Unix(1_700_000_000*30+15, 0)
	code, err := mfa.StepCode(rfcSecret, now.Unix()/30)
	if err != nil {
		t.Fatal(err)
	}
	wrong := code[:5] + string('0'+(code[5]-'0'+1)%10)

	if _, ok := mfa.MatchTOTP(rfcSecret, wrong, now); ok {
		t.Errorf("MatchTOTP accepted %s, the right code being %s", wrong, code)
	}
}

func TestMatchTOTPRejectsOtherSecret(t *testing.T) {
	now := time.Unix(1_700_000_000*30+15, 0)
	code, err := mfa.StepCode(rfcSecret, now.Unix()/30)
	if err != nil {
		t.Fatal(err)
	}

	if _, ok := mfa.MatchTOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", code, now); ok {
		t.Error("MatchTOTP accepted a code made with another secret")
	}
}

func TestMatchTOTPRejectsMalformedCode(t *testing.T) {
	now := time.Unix(1_700_000_000*30+15, 0)
	code, err := mfa.StepCode(rfcSecret, now.Unix()/30)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, code string }{
		{"empty", ""},
		{"five digits", code[:5]},
		{"seven digits", code + "0"},
		{"leading space", " " + code},
		{"trailing newline", code + "\n"},
		{"inner space", code[:3] + " " + code[3:]},
		{"letter", code[:5] + "a"},
		{"full-width digits", strings.Map(func(r rune) rune { return r - '0' + '０' }, code)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, ok := mfa.MatchTOTP(rfcSecret, c.code, now); ok {
				t.Errorf("MatchTOTP accepted %q", c.code)
			}
		})
	}
}

func TestMatchTOTPRejectsInvalidSecret(t *testing.T) {
	now := time.Unix(1_700_000_000*30+15, 0)
	for _, secret := range []string{"", "not base32!", "JBSWY3DPEHPK3PXP"} {
		if _, ok := mfa.MatchTOTP(secret, "123456", now); ok {
			t.Errorf("MatchTOTP accepted a code for secret %q", secret)
		}
	}
}
