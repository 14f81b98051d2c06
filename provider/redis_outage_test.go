package provider_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// redisServer is a redis-server process of the test's own, on a fixed port
// so that a replacement can take its place.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T, port int) *redisServer {
	t.Helper()
	binary, err := exec.LookPath("redis-server")
	if err != nil {
		if storagetest.Backend() == storagetest.Postgres || os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed: apt-get install redis-server")
		}
		t.Skip("redis-server is not installed")
	}
	cmd := exec.Command(binary, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	server := &redisServer{t: t, port: port, cmd: cmd}
	t.Cleanup(server.stop)

	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", server.addr(), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return server
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not start: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func (r *redisServer) stop() {
	if r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}

func TestRedisOutageGives503AndRecovers(t *testing.T) {
	port := freePort(t)
	redis := startRedis(t, port)

	backend := newSharedBackend(t)
	backend.sessions = storagetest.NewRedisSessionStore(t, "redis://"+redis.addr()+"/0")
	env := newReplica(t, backend, "")
	clientID, _ := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "peggy")

	b := newBrowser(t)
	testsupport.CallbackParams(t, b.Login(env.issuer, b.Get(authURL(env, validAuthParams(clientID))), "peggy", password))

	redis.stop()
	got := b.Get(authURL(env, validAuthParams(clientID)))
	if got.Status != http.StatusServiceUnavailable || got.Location != "" {
		t.Errorf("authorize with Redis down: %d, Location %q; want 503 without redirect", got.Status, got.Location)
	}
	ready, err := http.Get(env.issuer + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	if ready.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/health/ready with Redis down = %d, want 503", ready.StatusCode)
	}

	// A new, empty Redis on the same port: the old session is gone, so the
	// person signs in again, without a restart of the provider.
	startRedis(t, port)
	next := b.Get(authURL(env, validAuthParams(clientID)))
	if next.URL.Path != "/login" {
		t.Fatalf("after Redis returned: %d at %s, want the login page", next.Status, next.URL)
	}
	if query := testsupport.CallbackParams(t, b.Login(env.issuer, next, "peggy", password)); query.Get("code") == "" {
		t.Errorf("sign-in after Redis returned failed: %v", query)
	}
}
