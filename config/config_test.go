package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func newFlags(cfg *Config) *pflag.FlagSet {
	flags := pflag.NewFlagSet("test", pflag.ContinueOnError)
	BindFlags(flags, cfg)
	return flags
}

func TestValidateReportsEveryProblem(t *testing.T) {
	var cfg Config
	_ = newFlags(&cfg).Parse([]string{"--access-token-algorithm", "HS256", "--id-token-lifetime", "0s", "--log-level", "loud"})

	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted an empty issuer and secret")
	}
	for _, want := range []string{"missing issuer URL", "missing system secret", "HS256", "id-token-lifetime", "log-level"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	t.Setenv("LATCHKEY_ISSUER", "https://env.example")
	t.Setenv("LATCHKEY_ACCESS_TOKEN_LIFETIME", "5m")
	t.Setenv("LATCHKEY_PROVIDER_ADDR", "")

	var cfg Config
	flags := newFlags(&cfg)
	if err := flags.Parse([]string{"--access-token-lifetime", "7m"}); err != nil {
		t.Fatal(err)
	}
	if err := Load(flags); err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "https://env.example" {
		t.Errorf("issuer = %q, want the environment's", cfg.Issuer)
	}
	if cfg.AccessTokenLifetime != 7*time.Minute {
		t.Errorf("access token lifetime = %s, want the flag's 7m", cfg.AccessTokenLifetime)
	}
	if cfg.ProviderAddr != "127.0.0.1:3001" {
		t.Errorf("provider addr = %q, want the default for an empty variable", cfg.ProviderAddr)
	}

	t.Setenv("LATCHKEY_REFRESH_TOKEN_LIFETIME", "forever")
	if err := Load(newFlags(&Config{})); err == nil || !strings.Contains(err.Error(), "LATCHKEY_REFRESH_TOKEN_LIFETIME") {
		t.Errorf("unparsable variable: error = %v", err)
	}
}

func TestDevSecretIsCreatedOnce(t *testing.T) {
	dir := t.TempDir()
	first := Config{Dev: true, DataDir: dir, ProviderAddr: "127.0.0.1:3001"}
	generated, err := first.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if generated == "" || len(first.SystemSecret) < 32 {
		t.Fatalf("generated %q, secret of %d bytes", generated, len(first.SystemSecret))
	}
	info, err := os.Stat(generated)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode = %v, want 0600", info.Mode().Perm())
	}
	if first.Issuer != "http://127.0.0.1:3001" {
		t.Errorf("dev issuer = %q", first.Issuer)
	}

	second := Config{Dev: true, DataDir: dir, ProviderAddr: "127.0.0.1:3001"}
	generated, err = second.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if generated != "" || second.SystemSecret != first.SystemSecret {
		t.Error("a second start did not reuse the stored development secret")
	}
}

func TestSecretFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{SystemSecretFile: path, Issuer: "https://login.example", ProviderAddr: ":3001", UserAPIAddr: ":3003", SessionAPIAddr: ":3002",
		AccessTokenAlgorithm: "ES256", LogLevel: "info", AccessTokenLifetime: time.Hour, RefreshTokenLifetime: time.Hour,
		IDTokenLifetime: time.Hour, AuthorizationCodeLifetime: time.Minute, LoginSessionLifetime: time.Hour, LoginSessionIdleTimeout: time.Hour,
		MFALockout: time.Minute}
	if _, err := cfg.Resolve(); err != nil {
		t.Fatal(err)
	}
	if string(cfg.SystemSecret) != strings.Repeat("x", 40) {
		t.Errorf("secret read from file = %d bytes", len(cfg.SystemSecret))
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid configuration rejected: %v", err)
	}
}

func TestSecretRedactsItself(t *testing.T) {
	secret := Secret("super-secret-value")
	if strings.Contains(secret.String(), "super") || strings.Contains(secret.LogValue().String(), "super") {
		t.Error("Secret prints its value")
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "latchkey.yaml")
	content := "issuer: https://file.example\nredis_url: redis://cache:6379/1\naccess_token_lifetime: 15m\nmigrate: true\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LATCHKEY_ISSUER", "https://env.example")

	var cfg Config
	flags := newFlags(&cfg)
	if err := flags.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	if err := Load(flags); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Issuer != "https://env.example" {
		t.Errorf("issuer = %q, want the environment to win over the file", cfg.Issuer)
	}
	if cfg.RedisURL != "redis://cache:6379/1" || cfg.AccessTokenLifetime != 15*time.Minute || !cfg.Migrate {
		t.Errorf("file settings not applied: redis %q, lifetime %s, migrate %t", cfg.RedisURL, cfg.AccessTokenLifetime, cfg.Migrate)
	}
}

func TestConfigFileRejectsUnknownKeysAndInlineSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.yaml")
	if err := os.WriteFile(path, []byte("issuer: https://a.example\nisuer: typo\nsystem_secret: hunter2hunter2hunter2hunter2hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	flags := newFlags(&cfg)
	_ = flags.Parse([]string{"--config", path})
	err := Load(flags)
	if err == nil {
		t.Fatal("Load accepted an unknown key and an inline secret")
	}
	for _, want := range []string{`unknown setting "isuer"`, "system_secret_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Error("the error repeats the secret")
	}
}

func TestSecretSettingsFromFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "database-url")
	if err := os.WriteFile(path, []byte("postgres://u:p@db:5432/latchkey\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LATCHKEY_DATABASE_URL", "")
	t.Setenv("LATCHKEY_DATABASE_URL_FILE", path)
	var cfg Config
	flags := newFlags(&cfg)
	_ = flags.Parse(nil)
	if err := Load(flags); err != nil {
		t.Fatal(err)
	}
	if cfg.DatabaseURL != "postgres://u:p@db:5432/latchkey" {
		t.Errorf("database URL from file = %q", string(cfg.DatabaseURL))
	}
}
