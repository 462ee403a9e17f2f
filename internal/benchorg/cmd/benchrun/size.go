package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/internal/benchorg"
)

// sizeRun is the work directory of one org size.
type sizeRun struct {
	o    options
	bin  string
	dir  string
	n    int
	rows []Row
}

var dbFiles = []string{"bench.db", "bench.db-wal", "bench.db-shm"}

// measureSize runs every scenario for an org of n people in dir.
func measureSize(ctx context.Context, o options, bin, dir string, n int) ([]Row, error) {
	if err := os.MkdirAll(filepath.Join(dir, "snap"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "learnsync.yaml"), []byte(benchorg.Config), 0o600); err != nil {
		return nil, err
	}
	s := &sizeRun{o: o, bin: bin, dir: dir, n: n}
	defer os.RemoveAll(dir)
	base := filepath.Join(dir, "org-0.json")
	size, err := writeOrg(base, n, 0, o.seed)
	if err != nil {
		return nil, err
	}
	if err := s.sha(ctx, base, size); err != nil {
		return s.rows, err
	}
	steps := []struct {
		scenario string
		units    int // changed, in 1/10000 of the people
		restore  bool
		args     []string
	}{
		{scImport, 0, false, nil},
		{scNoChange, 0, false, nil},
		{scOnePct, 100, true, nil},
		{scFull, 0, true, []string{"--full"}},
	}
	for _, st := range steps {
		if st.scenario == scImport {
			s.removeDB()
		}
		if err := s.step(ctx, st.scenario, st.units, st.restore, st.args); err != nil {
			return s.rows, err
		}
		if st.scenario == scImport {
			if err := s.copyDB(dir, filepath.Join(dir, "snap")); err != nil {
				return s.rows, err
			}
		}
	}
	if n != o.curveSize {
		return s.rows, nil
	}
	for _, k := range o.changes {
		units := k * 10000 / n
		if units < 1 || units*n != k*10000 {
			fmt.Fprintf(os.Stderr, "benchrun: %d changed of %d people is not a multiple of 1/10000: skipped\n", k, n)
			continue
		}
		if units == 100 {
			continue // the one-percent run is this point
		}
		if err := s.step(ctx, scChanges, units, true, nil); err != nil {
			return s.rows, err
		}
	}
	return s.rows, nil
}

func (s *sizeRun) groups() int { return max(1, s.n/groupsPerPerson) }

func (s *sizeRun) row(scenario string, c child, size int64, load string) Row {
	g := s.groups()
	return Row{Users: s.n, Groups: g, Memberships: g * min(membersPerGroup, s.n), Scenario: scenario,
		Wall: c.wall, User: c.user, Sys: c.sys, MaxRSSKB: c.maxRSSKB, FileBytes: size, Exit: c.exit,
		When: time.Now().UTC().Format(time.RFC3339), Load: load}
}

// sha measures sha256sum of the org file: what noticing "no change" costs.
func (s *sizeRun) sha(ctx context.Context, path string, size int64) error {
	load := loadAvg()
	c, err := runChild(ctx, s.o.timeout, s.dir, "sha256sum", path)
	if err != nil {
		return err
	}
	s.add(s.row(scSHA, c, size, load))
	return nil
}

func (s *sizeRun) add(r Row) {
	s.rows = append(s.rows, r)
	fmt.Fprintf(os.Stderr, "benchrun: %8d people  %-13s changed %6d  %8.2f s  %7.0f MB  exit %d  load %s  %s\n",
		r.Users, r.Scenario, r.Changed, r.Wall, float64(r.MaxRSSKB)/1024, r.Exit, r.Load, r.Reconcile)
}

// step runs one learnsync cycle on the org with units/10000 changed, from
// the directory right after the first import when restore is set.
func (s *sizeRun) step(ctx context.Context, scenario string, units int, restore bool, extra []string) error {
	org := filepath.Join(s.dir, "org-0.json")
	if units > 0 {
		org = filepath.Join(s.dir, "org-"+strconv.Itoa(units)+".json")
		if _, err := writeOrg(org, s.n, units, s.o.seed); err != nil {
			return err
		}
		defer os.Remove(org)
	}
	link := filepath.Join(s.dir, "org.json")
	os.Remove(link)
	if err := os.Link(org, link); err != nil {
		return err
	}
	if restore {
		if err := s.copyDB(filepath.Join(s.dir, "snap"), s.dir); err != nil {
			return err
		}
	}
	st, err := os.Stat(org)
	if err != nil {
		return err
	}
	args := append([]string{"run", "--once", "-c", "learnsync.yaml", "--log-level", "info"}, extra...)
	load := loadAvg()
	c, err := runChild(ctx, s.o.timeout, s.dir, s.bin, args...)
	r := s.row(scenario, c, st.Size(), load)
	r.Changed = s.n * units / 10000
	parseSummary(&r, c.stderr)
	s.add(r)
	if err != nil {
		return err
	}
	if c.exit != 0 {
		return fmt.Errorf("%s: exit %d: %s", scenario, c.exit, lastLine(c.stderr+c.stdout))
	}
	return nil
}

// parseSummary reads the "run finished" line's counts and kind.
func parseSummary(r *Row, logs string) {
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `msg="run finished"`) {
			continue
		}
		r.Updated, _ = strconv.Atoi(attr(line, "updated"))
		if c, _ := strconv.Atoi(attr(line, "created")); r.Scenario == scImport {
			r.Updated = c
		}
		r.Reconcile = attr(line, "reconcile")
		r.Took = attr(line, "took")
		r.Fetch, r.Plan, r.Apply = attr(line, "fetch"), attr(line, "plan"), attr(line, "apply")
	}
}

// attr returns the value of key=value in a slog text line.
func attr(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		if j := strings.Index(v[1:], `"`); j >= 0 {
			return v[1 : j+1]
		}
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func (s *sizeRun) removeDB() {
	for _, f := range dbFiles {
		os.Remove(filepath.Join(s.dir, f))
	}
}

// copyDB copies the directory's database files from one folder to another
// (a missing file is removed at the destination).
func (s *sizeRun) copyDB(from, to string) error {
	for _, f := range dbFiles {
		src, err := os.Open(filepath.Join(from, f))
		if os.IsNotExist(err) {
			os.Remove(filepath.Join(to, f))
			continue
		}
		if err != nil {
			return err
		}
		dst, err := os.Create(filepath.Join(to, f))
		if err == nil {
			_, err = io.Copy(dst, src)
			if cerr := dst.Close(); err == nil {
				err = cerr
			}
		}
		src.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
