package okta

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
)

// The org of docs/PERFORMANCE.md: 20,000 users, 500 groups of 40 members,
// 50 ms latency per request.
//
//	go test -run '^$' -bench . -benchtime 1x ./connectors/okta/
//
// By default the fake's rate limits are raised so that latency is the
// floor. OKTA_BENCH_LIMITS=okta keeps Okta's usual per-minute limits (600
// users, 500 groups) at the default rate_limit_share of 0.5: the budget is
// then the floor and a full fetch takes minutes.
const (
	benchUsers   = 20000
	benchGroups  = 500
	benchMembers = 40
	benchLatency = 50 * time.Millisecond
)

func benchOrg(b *testing.B) (*oktatest.Server, []string, []string) {
	b.Helper()
	srv := oktatest.New(b)
	users := srv.AddPeople(benchUsers)
	groups := make([]string, benchGroups)
	for i := range benchGroups {
		g := srv.AddGroup(oktatest.Group{Name: fmt.Sprintf("group %03d", i)})
		groups[i] = g.ID
		srv.AddMember(g.ID, users[i*benchMembers:(i+1)*benchMembers]...)
	}
	if os.Getenv("OKTA_BENCH_LIMITS") != "okta" {
		for _, f := range []string{oktatest.FamilyUsers, oktatest.FamilyGroups, oktatest.FamilyApps} {
			srv.SetRateLimit(f, 1_000_000)
		}
	}
	srv.Advance(time.Minute)
	srv.SetLatency(benchLatency)
	return srv, users, groups
}

func benchConnector(b *testing.B, srv *oktatest.Server) *Connector {
	cfg := DefaultConfig()
	cfg.OrgURL = srv.URL()
	cfg.APIToken = connectors.Secret(srv.Token)
	cfg.CAFile = srv.CACertFile(b)
	c, err := New(cfg, connectors.Options{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkFullFetch(b *testing.B) {
	srv, _, _ := benchOrg(b)
	c := benchConnector(b, srv)
	var res *connectors.Result
	for b.Loop() {
		var err error
		if res, err = c.FetchAll(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	if len(res.Users) != benchUsers || len(res.Groups) != benchGroups {
		b.Fatalf("got %d users, %d groups", len(res.Users), len(res.Groups))
	}
	// Floor: the users pages one after the other, next to the group pages
	// and the member lists, memberWorkers at a time.
	userPages := (benchUsers + MaxPageSize - 1) / MaxPageSize
	groupPages := (benchGroups + MaxPageSize - 1) / MaxPageSize
	floor := max(time.Duration(userPages)*benchLatency,
		time.Duration(groupPages)*benchLatency+time.Duration((benchGroups+memberWorkers-1)/memberWorkers)*benchLatency)
	b.ReportMetric(float64(res.Requests), "requests/op")
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.Logf("requests %d (users %d pages, groups %d pages, %d member lists), latency floor %s",
		res.Requests, userPages, groupPages, benchGroups, floor)
}

func BenchmarkIncremental10Changes(b *testing.B) {
	srv, users, groups := benchOrg(b)
	c := benchConnector(b, srv)
	first, err := c.FetchAll(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	cursor := first.Cursor
	var res *connectors.Result
	round := 0
	for b.Loop() {
		b.StopTimer()
		// 10 changes: 7 profile edits and 3 membership changes.
		round++
		for i := range 7 {
			srv.SetProfile(users[round*100+i], "title", fmt.Sprintf("title %d", round))
		}
		for i := range 3 {
			srv.AddMember(groups[round*10+i], users[(round*10+i+1)*benchMembers])
		}
		srv.Advance(CursorOverlap + time.Second)
		b.StartTimer()
		if res, err = c.FetchChanges(context.Background(), cursor); err != nil {
			b.Fatal(err)
		}
		cursor = res.Cursor
	}
	if len(res.Users) != 7 || len(res.Groups) != 3 {
		b.Fatalf("got %d users, %d groups; want 7 and 3", len(res.Users), len(res.Groups))
	}
	b.ReportMetric(float64(res.Requests), "requests/op")
}
