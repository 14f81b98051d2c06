package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../../" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// secretName matches settings whose values are secrets. A database URL
// carries a password.
var secretName = regexp.MustCompile(`(?i)secret|password|database_url|token`)

// defaultedVariable matches ${NAME:-default} and ${NAME-default}.
var defaultedVariable = regexp.MustCompile(`\$\{(\w+):?-`)

func TestDockerCompose(t *testing.T) {
	var compose composeFile
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "docker-compose.yml")), &compose); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	readme := readRepoFile(t, "README.md")

	for _, name := range []string{"postgres", "redis", "migrate", "provider", "userapi", "sessionapi"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}
	for name, service := range compose.Services {
		if len(service.Healthcheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
		if strings.HasPrefix(service.Image, "latchkey") {
			command := "latchkey " + strings.Join(service.Command, " ")
			if !strings.Contains(readme, command) {
				t.Errorf("service %s runs %q, which the README does not show", name, command)
			}
		}
		for key, value := range service.Environment {
			for _, match := range defaultedVariable.FindAllStringSubmatch(value, -1) {
				if secretName.MatchString(match[1]) {
					t.Errorf("service %s gives the secret %s a default value", name, match[1])
				}
			}
			if strings.Contains(value, "@") {
				t.Errorf("service %s puts credentials in %s; read them from a Docker secret", name, key)
			}
			if !secretName.MatchString(key) {
				continue
			}
			if !strings.HasSuffix(key, "_FILE") {
				t.Errorf("service %s sets secret %s inline; use %s_FILE and a Docker secret", name, key, key)
			}
			if !strings.HasPrefix(value, "/run/secrets/") {
				t.Errorf("service %s reads %s from %q, not from a Docker secret", name, key, value)
			}
		}
	}
	for name, secret := range compose.Secrets {
		if secret.File == "" {
			t.Errorf("secret %s has no file: secrets must come from files the operator creates", name)
		}
	}
}

func TestDockerfile(t *testing.T) {
	dockerfile := readRepoFile(t, "Dockerfile")
	if count := len(regexp.MustCompile(`(?m)^FROM `).FindAllString(dockerfile, -1)); count < 2 {
		t.Errorf("Dockerfile has %d stages, want a multi-stage build", count)
	}
	if !strings.Contains(dockerfile, "CGO_ENABLED=0") {
		t.Error("Dockerfile does not build a static binary (CGO_ENABLED=0)")
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(dockerfile)
	if user == nil || strings.HasPrefix(user[1], "0") || strings.HasPrefix(user[1], "root") {
		t.Errorf("Dockerfile USER = %v, want a non-root user", user)
	}
	if !regexp.MustCompile(`(?m)^HEALTHCHECK .*latchkey.*health`).MatchString(dockerfile) {
		t.Error("Dockerfile has no HEALTHCHECK running latchkey health")
	}
}

func TestReadinessURL(t *testing.T) {
	cases := map[string]string{
		"0.0.0.0:3001":   "http://127.0.0.1:3001/health/ready",
		":3001":          "http://127.0.0.1:3001/health/ready",
		"127.0.0.1:4000": "http://127.0.0.1:4000/health/ready",
		"[::]:3001":      "http://127.0.0.1:3001/health/ready",
	}
	for addr, want := range cases {
		if got := readinessURL(addr); got != want {
			t.Errorf("readinessURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
