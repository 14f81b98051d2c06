package userapi_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

func TestProbeScratch(t *testing.T) {
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	user, pw := env.createUser(t, "racer")
	tok := env.signIn(t, env.newBrowser(t), "racer", pw, personScopes...)
	reverted := 0
	for round := 0; round < 10; round++ {
		var wg sync.WaitGroup
		var stop atomic.Bool
		var ok200 atomic.Int64
		for g := 0; g < 12; g++ {
			wg.Go(func() {
				for !stop.Load() {
					r, err := env.send(tok.AccessToken, http.MethodPatch, "/v1/me", map[string]string{"name": "Racer"})
					if err != nil { return }
					if r.status == 200 { ok200.Add(1) }
					if r.status == 403 { return }
				}
			})
		}
		for ok200.Load() < 5 {}
		r := env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/users/"+user.ID+"/disable", nil)
		if r.status != 200 { t.Fatalf("disable %d %s", r.status, r.body) }
		wg.Wait()
		stop.Store(true)
		u, _ := env.store.GetUser(context.Background(), user.ID)
		if !u.Disabled { reverted++ }
		env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/users/"+user.ID+"/enable", nil)
	}
	t.Logf("reverted in %d of 10 rounds", reverted)
}
