package service

import (
	"net/http"
	"testing"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/connectors"
)

// The public listener mounts the directory's read view at /scim/v2 when
// server.public.read_token is set, next to the push sources; a reload
// takes a new token, and none turns the view off.
func TestPublicReadView(t *testing.T) {
	const tok = "read-token-0123456789"
	cfgFor := func(readToken connectors.Secret) func(string) *config.Config {
		return func(dir string) *config.Config {
			cfg := testConfig(dir, testSource("hr", "@every 1h", "@every 24h"))
			cfg.Server.Public.Listen = "127.0.0.1:0"
			cfg.Server.Public.ReadToken = readToken
			return cfg
		}
	}
	h := newHarness(t, cfgFor(tok), newFakeSource("hr", "a@example.com"))
	ln := h.startPublic()
	get := func(token string) int {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/scim/v2/Users", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(tok); got != http.StatusOK {
		t.Fatalf("with the read token: %d", got)
	}
	if got := get("wrong-token-0123456789"); got != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %d", got)
	}
	h.svc.public.reload(cfgFor("")(t.TempDir()))
	if got := get(tok); got != http.StatusNotFound {
		t.Errorf("after a reload without read_token: %d", got)
	}
	h.svc.public.reload(cfgFor(tok + "-new")(t.TempDir()))
	if got := get(tok + "-new"); got != http.StatusOK {
		t.Errorf("after a reload with a new token: %d", got)
	}
}
