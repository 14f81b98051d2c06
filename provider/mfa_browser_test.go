package provider_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/provider"
)

// CSS selectors of the page contract in templates/mfa.html.
const (
	codeInput    = `input[name=code]`
	verifyButton = `button[type=submit]`
)

func TestBrowserSignInWithTOTP(t *testing.T) {
	chromium := chromiumPath(t)
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	rp := newRelyingParty(t, env, clientID, secret)
	user, password := env.createUser(t, "ivy")
	totpSecret := enrolTOTPInStore(t, env, user)
	browserCtx := startChromium(t, chromium)
	tab := newBrowserTab(t, browserCtx)
	artifacts := t.ArtifactDir()

	verifier := oauth2.GenerateVerifier()
	state, nonce := rand.Text(), rand.Text()
	authURL := rp.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	tab.do(t, "opening the authorization URL",
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(chromedp.CSS(usernameInput)),
	)
	loginShot := tab.saveScreenshot(t, artifacts, "login.png")

	tab.do(t, "signing in with the password",
		chromedp.SendKeys(chromedp.CSS(usernameInput), user.Username),
		chromedp.SendKeys(chromedp.CSS(passwordInput), password),
		chromedp.Click(chromedp.CSS(signInButton)),
		chromedp.WaitVisible(chromedp.CSS(codeInput)),
	)
	if path := tab.location(t).Path; path != "/login/mfa" {
		t.Errorf("the password led to %s, want /login/mfa", path)
	}
	if heading := tab.text(t, "h1"); heading != "Two-step verification" {
		t.Errorf("MFA page heading = %q, want %q", heading, "Two-step verification")
	}
	attributes, err := chromedp.Run(tab.ctx, chromedp.Attributes(chromedp.CSS(codeInput)))
	if err != nil {
		t.Fatalf("reading the attributes of %s failed: %v\n%s", codeInput, err, tab.state())
	}
	if attributes["autocomplete"] != "one-time-code" {
		t.Errorf("code input autocomplete = %q, want one-time-code", attributes["autocomplete"])
	}
	if tab.cookie(t, env.issuer, "latchkey_session") != nil {
		t.Error("the password alone set the latchkey_session cookie")
	}
	mfaShot := tab.saveScreenshot(t, artifacts, "mfa.png")

	tab.do(t, "typing a wrong code",
		chromedp.SendKeys(chromedp.CSS(codeInput), testsupport.WrongTOTPCode(t, totpSecret)),
		chromedp.Click(chromedp.CSS(verifyButton)),
		chromedp.WaitVisible(chromedp.CSS(loginError)),
	)
	if message := tab.text(t, loginError); message != "Invalid code. Try again." {
		t.Errorf("MFA error = %q, want %q", message, "Invalid code. Try again.")
	}

	tab.do(t, "typing the code of the authenticator app",
		chromedp.SendKeys(chromedp.CSS(codeInput), testsupport.TOTPCode(t, totpSecret, testsupport.CurrentTOTPStep()+1)),
	)
	params := tab.clickToCallback(t, chromedp.CSS(verifyButton))
	if params.Get("error") != "" {
		t.Fatalf("authorization failed: %s: %s", params.Get("error"), params.Get("error_description"))
	}
	if params.Get("state") != state {
		t.Errorf("callback state = %q, want %q", params.Get("state"), state)
	}
	if params.Get("code") == "" {
		t.Fatalf("callback has no code: %v", params)
	}
	if tab.cookie(t, env.issuer, "latchkey_session") == nil {
		t.Error("no latchkey_session cookie after the second factor")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	token, err := rp.config.Exchange(ctx, params.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange failed: %v", err)
	}
	claims := rp.idTokenClaims(t, token)
	if claims["sub"] != user.ID {
		t.Errorf("ID token sub = %v, want %s", claims["sub"], user.ID)
	}
	if amr := testsupport.StringsClaim(claims["amr"]); !slices.Equal(amr, []string{"pwd", "otp"}) {
		t.Errorf("ID token amr = %v, want [pwd otp]", claims["amr"])
	}
	if claims["acr"] != provider.ACRMFA {
		t.Errorf("ID token acr = %v, want %s", claims["acr"], provider.ACRMFA)
	}

	for _, shot := range []string{loginShot, mfaShot} {
		checkPNGFile(t, shot)
	}
	tab.checkNoOutsideRequests(t, env.issuer)
}

// saveScreenshot saves a PNG of the tab's viewport as dir/name and returns
// its path.
func (tab *browserTab) saveScreenshot(t *testing.T, dir, name string) string {
	t.Helper()
	image, err := chromedp.Run(tab.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("taking the screenshot %s failed: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, image, 0o644); err != nil {
		t.Fatalf("saving the screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// checkPNGFile checks that path is a non-empty PNG image.
func checkPNGFile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("reading the screenshot failed: %v", err)
		return
	}
	config, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Errorf("screenshot %s is not a PNG: %v", path, err)
		return
	}
	if config.Width == 0 || config.Height == 0 {
		t.Errorf("screenshot %s is %dx%d pixels, want a non-empty image", path, config.Width, config.Height)
	}
}
