package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/internal/benchorg"
)

// The performance targets of the foundation issue: 100,000 users, 5,000
// groups and 500,000 memberships from a file source. Each benchmark op is one
// `learnsync run --once` through Main, exactly as an admin runs it. Results
// and the command to reproduce them are in docs/PERFORMANCE.md.
//
//	go test -run '^$' -bench . -benchtime 3x ./cmd/learnsync/
const (
	benchUsers   = 100_000
	benchGroups  = 5_000
	benchMembers = 100 // per group: 500,000 memberships
)

func writeOrg(b *testing.B, path string, changed float64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	s := benchorg.Org{Users: benchUsers, Groups: benchGroups, MembersPerGroup: benchMembers, Seed: 1, Changed: changed}
	if err := s.Write(f); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

func benchConfig(b *testing.B, dir string) string {
	b.Helper()
	cfg := `
directory: {dsn: bench.db}
sources:
  - {name: hr, type: file, config: {path: org.json}}
licenses:
  - {name: pro, seats: 20000, groups: ["Group 0001", "Group 0002", "Group 0003"]}
  - {name: basic, all_active: true}
safety: {max_deactivations: 0, max_deactivation_percent: 0}
`
	p := filepath.Join(dir, "learnsync.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

func runBench(b *testing.B, cfg string) {
	b.Helper()
	var out, errs bytes.Buffer
	if code := Main(context.Background(), []string{"run", "--once", "--config", cfg, "--log-level", "error"}, &out, &errs, os.LookupEnv); code != 0 {
		b.Fatalf("exit %d: %s %s", code, out.String(), errs.String())
	}
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

func BenchmarkFirstImport(b *testing.B) {
	dir := b.TempDir()
	writeOrg(b, filepath.Join(dir, "org.json"), 0)
	cfg := benchConfig(b, dir)
	var peak float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(filepath.Join(dir, "bench.db"+suffix))
		}
		read := peakRSS()
		b.StartTimer()
		runBench(b, cfg)
		b.StopTimer()
		peak = max(peak, read())
	}
	b.ReportMetric(peak, "peak-RSS-MB")
}

func benchSteadyState(b *testing.B, changed float64) {
	dir := b.TempDir()
	org := filepath.Join(dir, "org.json")
	writeOrg(b, org, 0)
	cfg := benchConfig(b, dir)
	runBench(b, cfg)
	var peak float64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if changed > 0 {
			// Alternate between two versions so every op sees 1% changed.
			writeOrg(b, org, changed*float64(i%2+1))
		}
		read := peakRSS()
		b.StartTimer()
		runBench(b, cfg)
		b.StopTimer()
		peak = max(peak, read())
	}
	b.ReportMetric(peak, "peak-RSS-MB")
}

func BenchmarkNoChange(b *testing.B)         { benchSteadyState(b, 0) }
func BenchmarkOnePercentChange(b *testing.B) { benchSteadyState(b, 0.01) }
