package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/internal/benchorg"
)

// Helpers of the tests that run the learnsync binary as separate processes
// (crash_test.go, twoproc_test.go): build it, write an organisation and a
// configuration, run it, and read back the directory it left.

// buildLearnsync builds the learnsync command into a temporary directory,
// stripped of debug information: linking is the slow part.
func buildLearnsync(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "learnsync")
	cmd := exec.Command(goTool, "build", "-ldflags=-s -w", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func writeSynthetic(t *testing.T, path string, s benchorg.Org) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	if err := s.Write(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeCrashConfig writes a configuration in dir that reads org into db,
// with license pools and no safety limits, and returns its path.
func writeCrashConfig(t *testing.T, dir, name, db, org string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`directory: {dsn: %q}
sources:
  - {name: hr, type: file, config: {path: %q}}
licenses:
  - {name: pro, seats: 3000, groups: ["Group 0001", "Group 0002", "Group 0003", "Group 0790"]}
  - {name: basic, all_active: true}
safety: {max_deactivations: 0, max_deactivation_percent: 0}
`, db, org)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustRunBinary runs `learnsync run --once` with extra flags to the end,
// expects exit 0 and returns how long it took.
func mustRunBinary(t *testing.T, bin, config string, extra ...string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"run", "--once", "--config", config}, extra...)...)
	cmd.Stdout, cmd.Stderr = &out, &errs
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("learnsync run --once: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errs.String())
	}
	return time.Since(start)
}

// readDirState opens the database as the next run would, checks it (if
// check is set), makes sure nobody holds its run lock, and reads what a run
// changes.
func readDirState(t *testing.T, ctx context.Context, db string, check bool) dirState {
	t.Helper()
	st, err := directory.Open(ctx, db, directory.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", db, err)
	}
	defer st.Close()
	if check {
		checkDB(t, ctx, st)
	}
	unlock, err := st.Lock(ctx, 0)
	if err != nil {
		t.Fatalf("the run lock is still held: %v", err)
	}
	unlock()
	var s dirState
	if s.Export, err = st.Export(ctx); err != nil {
		t.Fatalf("export: %v", err)
	}
	if s.Cursors, err = st.Cursors(ctx); err != nil {
		t.Fatalf("cursors: %v", err)
	}
	sqlDB := st.DB()
	for q, dst := range map[string]*int{
		"SELECT count(*) FROM mirror_users":  &s.MirrorUsers,
		"SELECT count(*) FROM mirror_groups": &s.MirrorGroups,
		"SELECT count(*) FROM runs":          &s.Runs,
	} {
		if err := sqlDB.QueryRowContext(ctx, q).Scan(dst); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return s
}

// checkDB runs SQLite's integrity and foreign key checks.
func checkDB(t *testing.T, ctx context.Context, st *directory.Store) {
	t.Helper()
	if v, err := st.IntegrityCheck(ctx); err != nil || v != "ok" {
		t.Fatalf("PRAGMA integrity_check = %q, %v", v, err)
	}
	sqlDB := st.DB()
	rows, err := sqlDB.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		t.Fatalf("PRAGMA foreign_key_check: %v", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("PRAGMA foreign_key_check: %v", err)
	}
	if n > 0 {
		t.Fatalf("PRAGMA foreign_key_check: %d rows violate a foreign key", n)
	}
}

// dirState is what a run changes in the database.
type dirState struct {
	Export  *directory.Export
	Cursors map[string]string
	// MirrorUsers and MirrorGroups count the mirror rows.
	MirrorUsers, MirrorGroups int
	Runs                      int
}

// equal compares everything a run writes in its transaction.
func (s dirState) equal(o dirState) bool { return s.equalDirectory(o) && s.Runs == o.Runs }

// equalDirectory compares all but the run records.
func (s dirState) equalDirectory(o dirState) bool {
	return reflect.DeepEqual(s.Export, o.Export) && reflect.DeepEqual(s.Cursors, o.Cursors) &&
		s.MirrorUsers == o.MirrorUsers && s.MirrorGroups == o.MirrorGroups
}

// diff describes how s differs from before and after, briefly.
func (s dirState) diff(before, after dirState) string {
	var b strings.Builder
	for _, o := range []struct {
		name string
		st   dirState
	}{{"before", before}, {"after", after}} {
		fmt.Fprintf(&b, "vs %s: users %d/%d, groups %d/%d, licenses %v/%v, mirror users %d/%d, mirror groups %d/%d, runs %d/%d, cursors equal %v",
			o.name, len(s.Export.Users), len(o.st.Export.Users), len(s.Export.Groups), len(o.st.Export.Groups),
			s.Export.Licenses, o.st.Export.Licenses, s.MirrorUsers, o.st.MirrorUsers, s.MirrorGroups, o.st.MirrorGroups,
			s.Runs, o.st.Runs, reflect.DeepEqual(s.Cursors, o.st.Cursors))
		for i := range min(len(s.Export.Users), len(o.st.Export.Users)) {
			if !reflect.DeepEqual(s.Export.Users[i], o.st.Export.Users[i]) {
				fmt.Fprintf(&b, "; first different user:\n  got  %+v\n  want %+v", s.Export.Users[i], o.st.Export.Users[i])
				break
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
