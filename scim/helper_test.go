package scim_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/reconcile"
	"github.com/learnsync/learnsync/scim"
)

const token = "test-token-0123456789"

// fixture is a push endpoint on a real directory in a temporary folder,
// with two scim sources: entra (token) and okta (token + "-okta").
type fixture struct {
	t     *testing.T
	store *directory.Store
	srv   *httptest.Server
	mu    sync.Mutex
	// writes counts the Written calls per source.
	writes map[string]int
}

func newFixture(t *testing.T, sources ...scim.Source) *fixture {
	t.Helper()
	store, err := directory.Open(context.Background(), filepath.Join(t.TempDir(), "d.db"), directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if len(sources) == 0 {
		sources = []scim.Source{{Name: "entra", Token: token}, {Name: "okta", Token: token + "-okta"}}
	}
	f := &fixture{t: t, store: store, writes: map[string]int{}}
	h := scim.NewHandler(scim.Options{Store: store, Written: func(s string) {
		f.mu.Lock()
		f.writes[s]++
		f.mu.Unlock()
	}}, sources)
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// answer is a response: status, headers and the decoded JSON body.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request to the entra source (path relative to its base URL)
// with its token; hdr are "Key: value" headers, which may replace it.
func (f *fixture) do(method, path, body string, hdr ...string) answer {
	return f.doAt("/scim/entra/v2", method, path, body, append([]string{"Authorization: Bearer " + token}, hdr...)...)
}

func (f *fixture) doAt(base, method, path, body string, hdr ...string) answer {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+base+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(data)}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &a.body); err != nil {
			f.t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, path, err, data)
		}
	}
	return a
}

// want fails unless the answer has status.
func (a answer) want(t *testing.T, status int) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.raw)
	}
	return a
}

// id is the answer's id.
func (a answer) id() string { s, _ := a.body["id"].(string); return s }

// get walks the body: keys of objects, indexes of lists as "0", "1".
func (a answer) get(path ...string) any {
	var v any = a.body
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// mirror returns the stored mirror of source.
func (f *fixture) mirror(source string) *reconcile.Mirror {
	f.t.Helper()
	ms, err := f.store.LoadMirrors(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	if m := ms[source]; m != nil {
		return m
	}
	return reconcile.NewMirror(source)
}

// mirrorUser returns the mirror row of a user, failing when there is none.
func (f *fixture) mirrorUser(source, id string) *connectors.User {
	f.t.Helper()
	u := f.mirror(source).Users[id]
	if u == nil {
		f.t.Fatalf("no mirror row for user %s of %s", id, source)
	}
	return u
}

// createUser posts a minimal user and returns its id.
func (f *fixture) createUser(userName, email string) string {
	f.t.Helper()
	return f.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+userName+
		`","active":true,"emails":[{"value":"`+email+`","type":"work","primary":true}]}`).want(f.t, 201).id()
}
