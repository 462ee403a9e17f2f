package entra_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/connectors/entra"
	"github.com/learnsync/learnsync/connectors/entra/entratest"
	"github.com/learnsync/learnsync/connectors/fault"
)

// TestTransitiveGroupsInACycle: groups nested in a cycle (A in B, B in A)
// are legal in Entra. Graph's transitiveMembers resolves them; the fetch
// ends, and each group lists the users of the whole cycle once.
func TestTransitiveGroupsInACycle(t *testing.T) {
	srv := entratest.New(t)
	u1 := srv.AddUser(entratest.User{UserPrincipalName: "one@corp.example"})
	u2 := srv.AddUser(entratest.User{UserPrincipalName: "two@corp.example"})
	a := srv.AddGroup(entratest.Group{DisplayName: "A"})
	b := srv.AddGroup(entratest.Group{DisplayName: "B"})
	srv.AddMember(a, b, u1)
	srv.AddMember(b, a, u2)
	h := newHarness(t, srv, func(c *entra.Config) { c.TransitiveGroups = true })

	full, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	want := []string{u1, u2}
	if u1 > u2 {
		want = []string{u2, u1}
	}
	for _, g := range []string{a, b} {
		if d := cmp.Diff(want, full.Members[g]); d != "" {
			t.Errorf("transitive members of %s (-want +got):\n%s", g, d)
		}
	}
	// A change inside the cycle reaches both groups.
	u3 := srv.AddUser(entratest.User{UserPrincipalName: "three@corp.example"})
	srv.AddMember(a, u3)
	res, err := h.conn.FetchChanges(ctx(t), full.Cursor)
	if err != nil {
		t.Fatalf("FetchChanges: %v", err)
	}
	for _, g := range []string{a, b} {
		if got := res.Members[g]; len(got) != 3 {
			t.Errorf("after adding a user to A, %s lists %v, want all three users", g, got)
		}
	}
}

// TestForeignNextLinkIsNotFollowed: a page whose nextLink points at another
// server (another port on the same host included) fails the fetch; the
// token is never sent there.
func TestForeignNextLinkIsNotFollowed(t *testing.T) {
	srv := entratest.New(t)
	srv.AddUser(entratest.User{UserPrincipalName: "one@corp.example"})
	var hits atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"value": [], "@odata.deltaLink": "x"}`)
	}))
	defer other.Close()
	srv.Inject(fault.Fault{Endpoint: "users/delta", Status: 200,
		Body: `{"value": [], "@odata.nextLink": "` + other.URL + `/v1.0/users/delta?$skiptoken=steal"}`})
	h := newHarness(t, srv, nil)
	res, err := h.conn.FetchAll(ctx(t))
	if err == nil || res != nil || !strings.Contains(err.Error(), "outside graph_url") {
		t.Fatalf("FetchAll = %v, %v; want a failure naming the foreign link", res, err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the foreign server got %d requests", n)
	}
}
