package entra_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/entra"
	"github.com/learnsync/learnsync/connectors/entra/entratest"
)

// TestPerformance measures a full round of 20,000 users and an incremental
// cycle with 10 changes against the fake (loopback, so it shows the
// connector's and the SDK's cost and the request counts, not Graph's
// latency). Run with LEARNSYNC_PERF=1 go test -run Performance -v.
func TestPerformance(t *testing.T) {
	if os.Getenv("LEARNSYNC_PERF") == "" {
		t.Skip("set LEARNSYNC_PERF=1 to run")
	}
	const nUsers, nGroups, perGroup = 20000, 200, 100
	srv := entratest.New(t)
	srv.SetPageSize(999) // what the connector asks for with Prefer: odata.maxpagesize
	var users []string
	for i := 1; i <= nUsers; i++ {
		users = append(users, srv.AddUser(entratest.User{
			ID: entratest.UserID(i), UserPrincipalName: fmt.Sprintf("user%05d@corp.example", i),
			Mail: fmt.Sprintf("user%05d@corp.example", i), GivenName: "Given", Surname: fmt.Sprint(i),
			DisplayName: fmt.Sprintf("User %d", i), Department: fmt.Sprintf("Dept %d", i%40),
		}))
	}
	var groups []string
	for g := 1; g <= nGroups; g++ {
		id := srv.AddGroup(entratest.Group{ID: entratest.GroupID(g), DisplayName: fmt.Sprintf("Group %d", g)})
		groups = append(groups, id)
		for k := range perGroup {
			srv.AddMember(id, users[(g*perGroup+k)%nUsers])
		}
	}
	h := newHarness(t, srv, nil)

	start := time.Now()
	full, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full round: %d users, %d groups, %d requests, %v", len(full.Users), len(full.Groups), full.Requests, time.Since(start))
	if len(full.Users) != nUsers {
		t.Fatalf("users = %d", len(full.Users))
	}

	for i := range 5 {
		srv.UpdateUser(users[i*100], func(u *entratest.User) { u.JobTitle = "Changed" })
	}
	srv.DisableUser(users[1001])
	srv.DisableUser(users[1002])
	srv.DeleteUser(users[1003])
	srv.AddMember(groups[0], users[5000])
	srv.RemoveMember(groups[1], users[(2*perGroup)%nUsers])

	start = time.Now()
	delta, err := h.conn.FetchChanges(ctx(t), full.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("incremental, 10 changes: %d users, %d deleted, +%d/-%d members, %d requests, %v",
		len(delta.Users), len(delta.DeletedUsers), len(delta.AddedMembers), len(delta.RemovedMembers), delta.Requests, time.Since(start))

	ht := newHarness(t, srv, func(c *entra.Config) { c.TransitiveGroups = true })
	start = time.Now()
	tfull, err := ht.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full round, transitive_groups: %d requests, %v", tfull.Requests, time.Since(start))
	srv.AddMember(groups[2], users[7000])
	start = time.Now()
	tdelta, err := ht.conn.FetchChanges(ctx(t), tfull.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("incremental, transitive_groups, 1 member added: %d lists replaced, %d requests, %v",
		len(tdelta.Members), tdelta.Requests, time.Since(start))
}
