package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/okta"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/directory/dirtest"
	"github.com/learnsync/learnsync/internal/benchorg"
	"github.com/learnsync/learnsync/internal/pgtest"
	"github.com/learnsync/learnsync/reconcile"
)

// The performance targets of the foundation issue: 100,000 users, 5,000
// groups and 500,000 memberships from a file source. Each benchmark op is one
// `learnsync run --once` through Main, exactly as an admin runs it. Results
// and the command to reproduce them are in docs/PERFORMANCE.md.
//
//	go test -run '^$' -bench . -benchtime 3x ./cmd/learnsync/
//
// LEARNSYNC_BENCH_USERS sets another org size (groups of 100, a twentieth
// as many groups as people). For several sizes as separate processes, with
// plots, see internal/benchorg/cmd/benchrun.
const (
	benchUsers   = 100_000
	benchMembers = 100 // per group: 5 memberships a person
)

// benchSize returns the org size in the environment variable env, or def.
func benchSize(b *testing.B, env string, def int) int {
	b.Helper()
	v, ok := os.LookupEnv(env)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n < benchMembers {
		b.Fatalf("%s=%q: want a number of people (at least %d)", env, v, benchMembers)
	}
	return n
}

func writeOrg(b *testing.B, path string, changed float64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	n := benchSize(b, "LEARNSYNC_BENCH_USERS", benchUsers)
	s := benchorg.Org{Users: n, Groups: n / 20, MembersPerGroup: benchMembers, Seed: 1, Changed: changed}
	if err := s.Write(f); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchConfig writes the benchmark configuration in dir and returns its
// path. With a dsn (the postgres sub-benchmarks) the directory is that
// PostgreSQL database instead of bench.db.
func benchConfig(b *testing.B, dir, dsn string) string {
	b.Helper()
	content := benchorg.Config
	if dsn != "" {
		content = strings.Replace(content, "directory: {dsn: bench.db}",
			fmt.Sprintf("directory: {driver: postgres, dsn: %q}", dsn), 1)
	}
	p := filepath.Join(dir, "learnsync.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

// eachBackend runs fn as one sub-benchmark per directory backend (sqlite,
// postgres), so that both are measured side by side in one run; dsn is
// empty on SQLite and, on PostgreSQL, a new database of the server
// LEARNSYNC_TEST_POSTGRES names (without it the postgres sub-benchmark is
// skipped, saying why). newDSN gives another new database (a first import
// per op).
func eachBackend(b *testing.B, fn func(b *testing.B, newDSN func() string)) {
	for _, backend := range dirtest.Backends {
		b.Run(backend, func(b *testing.B) {
			newDSN := func() string { return "" }
			if backend == directory.DriverPostgres {
				pgtest.Require(b)
				newDSN = func() string { return pgtest.DSN(b) }
			}
			fn(b, newDSN)
		})
	}
}

func runBench(b *testing.B, cfg string) {
	b.Helper()
	runBenchEnv(b, cfg, os.LookupEnv)
}

// runBenchEnv runs `learnsync run --once` on cfg with the environment
// lookup and returns its one-line summary.
func runBenchEnv(b *testing.B, cfg string, lookup func(string) (string, bool)) string {
	b.Helper()
	var out, errs bytes.Buffer
	if code := Main(context.Background(), []string{"run", "--once", "--config", cfg, "--log-level", "error"}, &out, &errs, lookup); code != 0 {
		b.Fatalf("exit %d: %s %s", code, out.String(), errs.String())
	}
	return out.String()
}

// peakRSS resets the kernel's high-water mark of this process's resident
// memory and returns a func that reads it in MB. Linux only; -1 elsewhere.
func peakRSS() func() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return func() float64 { return -1 }
	}
	return func() float64 {
		f, err := os.Open("/proc/self/status")
		if err != nil {
			return -1
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
				return float64(kb) / 1024
			}
		}
		return -1
	}
}

func BenchmarkFirstImport(b *testing.B) { eachBackend(b, benchFirstImport) }

func benchFirstImport(b *testing.B, newDSN func() string) {
	dir := b.TempDir()
	writeOrg(b, filepath.Join(dir, "org.json"), 0)
	cfg := benchConfig(b, dir, newDSN())
	measureRuns(b, cfg, func(i int) {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(filepath.Join(dir, "bench.db"+suffix))
		}
		if i > 0 {
			if dsn := newDSN(); dsn != "" {
				benchConfig(b, dir, dsn) // an empty database for every op
			}
		}
	})
}

func benchSteadyState(b *testing.B, newDSN func() string, changed float64) {
	dir := b.TempDir()
	org := filepath.Join(dir, "org.json")
	writeOrg(b, org, 0)
	cfg := benchConfig(b, dir, newDSN())
	runBench(b, cfg)
	measureRuns(b, cfg, func(i int) {
		if changed > 0 {
			// Alternate between two versions so every op sees 1% changed.
			writeOrg(b, org, changed*float64(i%2+1))
		}
	})
}

// measureRuns times b.N runs on cfg, each after an untimed prepare(i), and
// reports the peak RSS.
func measureRuns(b *testing.B, cfg string, prepare func(i int)) {
	var peak float64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		prepare(i)
		read := peakRSS()
		b.StartTimer()
		runBench(b, cfg)
		b.StopTimer()
		peak = max(peak, read())
	}
	b.ReportMetric(peak, "peak-RSS-MB")
}

func BenchmarkNoChange(b *testing.B) {
	eachBackend(b, func(b *testing.B, newDSN func() string) { benchSteadyState(b, newDSN, 0) })
}

func BenchmarkOnePercentChange(b *testing.B) {
	eachBackend(b, func(b *testing.B, newDSN func() string) { benchSteadyState(b, newDSN, 0.01) })
}

// The Okta delta target of issue 11: a 1M-user org in the project's Okta
// fake, 100 people changed, fetch + reconcile ≤ 1 s after the fake answers.
// Each op changes 100 titles (untimed) and times one `learnsync run --once`
// against the fake: an incremental fetch and its reconcile. fake-s/op is the
// time the fake itself took to answer the op's requests (the Took of its
// request log); learnsync-s/op is the op's time less that.
// LEARNSYNC_BENCH_OKTA_USERS sets the org size (default 20,000; groups of
// 100, a twentieth as many groups as people). The untimed setup is a full
// fetch and first import of the whole org. LEARNSYNC_BENCH_OKTA_PROFILE=file
// writes a CPU profile of the ops alone (-cpuprofile's is mostly setup).
//
//	LEARNSYNC_BENCH_OKTA_USERS=100000 go test -run '^$' -bench OktaDelta -benchtime 3x ./cmd/learnsync/
func BenchmarkOktaDelta100(b *testing.B) {
	const changes = 100
	n := benchSize(b, "LEARNSYNC_BENCH_OKTA_USERS", 20_000)
	rss := peakRSS()
	srv, users := oktaBenchOrg(b, n)
	b.Logf("fake org of %d users, %d groups: %s", n, n/20, heapMB())
	dir := b.TempDir()
	cfg := filepath.Join(dir, "learnsync.yaml")
	if err := os.WriteFile(cfg, []byte(oktaBenchConfig(b, srv)), 0o600); err != nil {
		b.Fatal(err)
	}
	lookup := func(k string) (string, bool) {
		if k == "OKTA_API_TOKEN" {
			return srv.Token, true
		}
		return os.LookupEnv(k)
	}
	start := time.Now()
	runBenchEnv(b, cfg, lookup)
	b.Logf("setup: full fetch and first import of %d users, %d groups: %s; peak RSS %.0f MB",
		n, n/20, time.Since(start).Round(time.Millisecond), rss())
	stop := opsProfile(b)
	var fake time.Duration
	requests := 0
	// b.Loop runs this function once, so the setup above is done once.
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		for k := range changes {
			srv.SetProfile(users[(k*(n/changes)+i)%n], "title", "Title "+strconv.Itoa(i))
		}
		srv.Advance(okta.CursorOverlap + time.Second)
		srv.ResetRequests()
		b.StartTimer()
		summary := runBenchEnv(b, cfg, lookup)
		b.StopTimer()
		if !strings.Contains(summary, " "+strconv.Itoa(changes)+" updated") {
			b.Fatalf("want %d updated: %s", changes, summary)
		}
		for _, r := range srv.RequestLog() {
			requests++
			fake += r.Took
		}
		b.StartTimer()
	}
	stop()
	b.ReportMetric(rss(), "peak-RSS-MB")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
	b.ReportMetric(fake.Seconds()/float64(b.N), "fake-s/op")
	b.ReportMetric((b.Elapsed()-fake).Seconds()/float64(b.N), "learnsync-s/op")
}

// oktaBenchOrg fills the fake with n people and n/20 groups of 100 members
// drawn at random, with rate limits out of the way.
func oktaBenchOrg(b *testing.B, n int) (*oktatest.Server, []string) {
	b.Helper()
	srv := oktatest.New(b)
	users := srv.AddPeople(n)
	rng := rand.New(rand.NewPCG(1, 2))
	members := make([]string, 0, benchMembers)
	for j := range n / 20 {
		g := srv.AddGroup(oktatest.Group{Name: fmt.Sprintf("Group %04d", j)})
		seen := make(map[int]bool, benchMembers)
		members = members[:0]
		for len(members) < benchMembers {
			if u := rng.IntN(n); !seen[u] {
				seen[u] = true
				members = append(members, users[u])
			}
		}
		srv.AddMember(g.ID, members...)
	}
	for _, f := range []string{oktatest.FamilyUsers, oktatest.FamilyGroups, oktatest.FamilyApps} {
		srv.SetRateLimit(f, 1_000_000_000)
	}
	// Past the creation stamps, so the first cursor is after them.
	srv.Advance(time.Minute)
	return srv, users
}

// oktaBenchConfig is benchConfig's with the fake as the source.
func oktaBenchConfig(b *testing.B, srv *oktatest.Server) string {
	return fmt.Sprintf(`
directory: {dsn: bench.db}
sources:
  - name: okta
    type: okta
    config: {org_url: %s, api_token: "${OKTA_API_TOKEN}", ca_file: %s}
licenses:
  - {name: pro, seats: 20000, groups: ["okta/Group 0001", "okta/Group 0002", "okta/Group 0003"]}
  - {name: basic, all_active: true}
safety: {max_deactivations: 0, max_deactivation_percent: 0}
`, srv.URL(), srv.CACertFile(b))
}

// opsProfile starts a CPU profile of the ops alone (not the setup) into
// the file LEARNSYNC_BENCH_OKTA_PROFILE names, if set, and returns its stop.
func opsProfile(b *testing.B) func() {
	b.Helper()
	path := os.Getenv("LEARNSYNC_BENCH_OKTA_PROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// heapMB is the live heap after a collection, for the log.
func heapMB() string {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return fmt.Sprintf("%.0f MB live heap", float64(m.HeapAlloc)/(1<<20))
}

// BenchmarkServiceCycle times the cycles of a running service, on both
// backends: one store, opened once, and one engine, as `learnsync run`
// keeps them, so an op is a cycle without a process's start (connecting to
// the database, migrations, the configuration). BenchmarkNoChange and
// BenchmarkOnePercentChange time whole `run --once` processes, which on
// PostgreSQL include connecting.
//
//	LEARNSYNC_TEST_POSTGRES=... go test -run '^$' -bench ServiceCycle -benchtime 20x ./cmd/learnsync/
func BenchmarkServiceCycle(b *testing.B) {
	for _, c := range []struct {
		name    string
		changed float64
	}{{"nochange", 0}, {"onepercent", 0.01}} {
		b.Run(c.name, func(b *testing.B) {
			eachBackend(b, func(b *testing.B, newDSN func() string) { benchServiceCycle(b, newDSN, c.changed) })
		})
	}
}

func benchServiceCycle(b *testing.B, newDSN func() string, changed float64) {
	ctx := context.Background()
	dir := b.TempDir()
	org := filepath.Join(dir, "org.json")
	writeOrg(b, org, 0)
	cfgPath := benchConfig(b, dir, newDSN())
	runBench(b, cfgPath) // the first import, untimed
	a := &app{stdout: io.Discard, stderr: io.Discard, lookup: os.LookupEnv, configPath: cfgPath,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg, store, err := a.open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	e, err := a.engine(cfg, store, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if changed > 0 {
			b.StopTimer()
			writeOrg(b, org, changed*float64(i%2+1))
			b.StartTimer()
		}
		out, err := e.Run(ctx, reconcile.RunOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if changed > 0 && out.NoChange {
			b.Fatalf("cycle %d: the changed org made no change", i)
		}
		if changed == 0 && !out.NoChange {
			b.Fatalf("cycle %d: the unchanged org changed the directory", i)
		}
	}
}
