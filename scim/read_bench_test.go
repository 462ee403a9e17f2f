package scim_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/directory/dirtest"
	"github.com/learnsync/learnsync/scim"
)

// benchPeople is the size of the directory of BenchmarkReadView.
const benchPeople = 100_000

// fillDirectory inserts n people (u000000…, 2% inactive), n/100 groups of
// 100 members (each person in one) and a seat for every active person,
// straight through the store's database, in one transaction.
func fillDirectory(b *testing.B, store *directory.Store, n int) {
	b.Helper()
	ctx := context.Background()
	tx, err := store.DB().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	exec := func(q string, args ...any) {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	exec(`INSERT INTO pools (name, seats, updated_at) VALUES ('pro', 0, ?)`, now)
	for g := range n / 100 {
		exec(`INSERT INTO groups (id, source, external_id, name, created_at, updated_at) VALUES (?, 'hr', ?, ?, ?, ?)`,
			g+1, fmt.Sprintf("g%04d", g), fmt.Sprintf("Group %04d", g), now, now)
	}
	for i := range n {
		active := i%50 != 7
		exec(`INSERT INTO people (id, match_key, user_name, email, given_name, family_name, display_name, title, department,
			employee_number, manager, cost_center, active, created_at, updated_at) VALUES (?, ?, ?, ?, 'Ada', 'Lovelace', 'Ada Lovelace',
			'Engineer', 'Engineering', ?, 'u000001', 'CC-1', ?, ?, ?)`,
			i+1, fmt.Sprintf("user%06d@example.com", i), fmt.Sprintf("u%06d", i), fmt.Sprintf("user%06d@example.com", i),
			fmt.Sprintf("%06d", i), active, now, now)
		exec(`INSERT INTO memberships (group_id, person_id) VALUES (?, ?)`, i%(n/100)+1, i+1)
		if active {
			exec(`INSERT INTO assignments (pool, person_id, granted_at) VALUES ('pro', ?, ?)`, i+1, now)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if store.Driver() == directory.DriverPostgres {
		// The planner's statistics, as autovacuum gathers them within a
		// minute of such a load (the store's own bulk loads analyze).
		if _, err := store.DB().ExecContext(ctx, "ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
}

// timed sends n GETs of the path next() returns, one at a time over one
// keep-alive connection, and reports the latencies' p50 and p99.
func timed(b *testing.B, srv *httptest.Server, next func() string) {
	b.Helper()
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest("GET", srv.URL+"/scim/v2"+next(), nil)
		req.Header.Set("Authorization", "Bearer "+readToken)
		start := time.Now()
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took = append(took, time.Since(start))
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("status %d, %v", resp.StatusCode, err)
		}
	}
	b.StopTimer()
	slices.Sort(took)
	pct := func(p float64) float64 { return float64(took[int(float64(len(took)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkReadView is the read view's load test on loopback: a directory
// of 100,000 people; one client at a time. Run it with
//
//	go test -run '^$' -bench ReadView -benchtime 2000x ./scim/
//
// (a page of 1,000 takes longer: -benchtime applies to both).
// BenchmarkReadView runs on each directory backend, side by side: sqlite,
// and postgres on the server LEARNSYNC_TEST_POSTGRES names (skipped,
// saying why, without it).
func BenchmarkReadView(b *testing.B) {
	for _, backend := range dirtest.Backends {
		b.Run(backend, func(b *testing.B) { benchReadView(b, backend) })
	}
}

func benchReadView(b *testing.B, backend string) {
	store := dirtest.Open(b, backend, directory.Options{})
	start := time.Now()
	fillDirectory(b, store, benchPeople)
	b.Logf("filled %d people in %s", benchPeople, time.Since(start).Round(time.Millisecond))
	srv := httptest.NewServer(scim.NewReadHandler(scim.ReadOptions{Store: store}, readToken))
	defer srv.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run("userName-eq", func(b *testing.B) {
		timed(b, srv, func() string {
			return "/Users?filter=" + url.QueryEscape(fmt.Sprintf(`userName eq "U%06d"`, rng.IntN(benchPeople)))
		})
	})
	b.Run("page-1000", func(b *testing.B) {
		timed(b, srv, func() string {
			return fmt.Sprintf("/Users?count=1000&startIndex=%d", 1+rng.IntN(benchPeople-1000))
		})
	})
	b.Run("lastModified-gt", func(b *testing.B) {
		// 100 people change; an application polls for them.
		since := time.Now().UTC().Format(time.RFC3339Nano)
		time.Sleep(2 * time.Millisecond)
		if _, err := store.DB().Exec(`UPDATE people SET title = 'Lead', updated_at = ? WHERE id % 1000 = 0`, time.Now().UTC()); err != nil {
			b.Fatal(err)
		}
		timed(b, srv, func() string {
			return "/Users?count=100&filter=" + url.QueryEscape(`meta.lastModified gt "`+since+`"`)
		})
	})
}
