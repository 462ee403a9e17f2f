package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/internal/benchorg"
)

// rulesBenchConfig is benchorg.Config with rules as expressions on top: a
// mapped attribute and a scope rule over each raw file record, and a when
// rule on each pool. The pools and the people they hold are the same.
const rulesBenchConfig = `
directory: {dsn: bench.db}
sources:
  - name: hr
    type: file
    config: {path: org.json}
    map:
      cost_center: 'user.department + "-" + user.employee_number.substring(0, 2)'
    scope: {when: 'user.title != "Contractor"'}
licenses:
  - name: pro
    seats: 20000
    groups: ["Group 0001", "Group 0002", "Group 0003"]
    when: 'person.department != "" && person.cost_center.contains("-")'
  - {name: basic, all_active: true, when: '"hr" in person.sources'}
safety: {max_deactivations: 0, max_deactivation_percent: 0}
`

// BenchmarkRules measures what the rules add to a full reconcile (run
// --once --full of an unchanged org) and to an incremental one (1% of the
// people changed, as BenchmarkOnePercentChange), against the same org and
// pools without rules, in one run:
//
//	go test -run '^$' -bench 'Rules' -benchtime 3x -count 3 ./cmd/learnsync/
func BenchmarkRules(b *testing.B) {
	for _, mode := range []string{"full", "incremental"} {
		for _, variant := range []string{"plain", "rules"} {
			b.Run(mode+"/"+variant, func(b *testing.B) {
				dir := b.TempDir()
				org := filepath.Join(dir, "org.json")
				writeOrg(b, org, 0)
				body := benchorg.Config
				if variant == "rules" {
					body = rulesBenchConfig
				}
				cfg := filepath.Join(dir, "learnsync.yaml")
				if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
					b.Fatal(err)
				}
				runBench(b, cfg)
				if mode == "incremental" {
					// The first change is planned in full (a snapshot's
					// first delta); the timed ones are incremental.
					writeOrg(b, org, 0.03)
					runBench(b, cfg)
					if got := benchReconcile(b, dir); got != "incremental" {
						b.Fatalf("the runs reconcile %s, want incremental", got)
					}
				}
				var args []string
				if mode == "full" {
					args = []string{"--full"}
				}
				b.ResetTimer()
				for i := range b.N {
					if mode == "incremental" {
						b.StopTimer()
						writeOrg(b, org, 0.01*float64(i%2+1))
						b.StartTimer()
					}
					runBenchArgs(b, cfg, args...)
				}
				b.StopTimer()
				if got := benchReconcile(b, dir); !strings.HasPrefix(got, mode) {
					b.Fatalf("the timed runs reconcile %s, want %s", got, mode)
				}
			})
		}
	}
}

// runBenchArgs runs `learnsync run --once` with extra flags and returns its
// summary line.
func runBenchArgs(b *testing.B, cfg string, extra ...string) string {
	b.Helper()
	var out, errs bytes.Buffer
	args := append([]string{"run", "--once", "--config", cfg, "--log-level", "error"}, extra...)
	if code := Main(context.Background(), args, &out, &errs, os.LookupEnv); code != 0 {
		b.Fatalf("exit %d: %s %s", code, out.String(), errs.String())
	}
	return out.String()
}

// benchReconcile says how the newest run on the directory in dir
// reconciled, and why when fully.
func benchReconcile(b *testing.B, dir string) string {
	b.Helper()
	st, err := directory.Open(context.Background(), filepath.Join(dir, "bench.db"), directory.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs(context.Background(), 1)
	if err != nil || len(runs) == 0 {
		b.Fatalf("read runs: %v", err)
	}
	return strings.TrimSpace(runs[0].Reconcile + " " + runs[0].FullReason)
}
