package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/internal/benchorg"
	"github.com/learnsync/learnsync/reconcile"
)

// The crash test's organisation: big enough that a first import spends
// about a second in its one transaction, small enough that two dozen
// killed runs and their recoveries fit in well under a minute.
const (
	crashUsers   = 15_000
	crashGroups  = 750
	crashMembers = 50
	// crashKills is how many runs must be killed while still running.
	crashKills = 20
	// walStarted is the WAL size from which a run is counted as inside its
	// commit: the schema migration writes about 110 kB; a commit of this
	// organisation spills megabytes into the WAL long before COMMIT.
	walStarted = 1 << 20
)

// TestCrashConsistency kills `learnsync run --once` with SIGKILL at random
// moments, during a first import and during a later run with many changes.
// After each kill the database must open, pass SQLite's integrity and
// foreign key checks, hold exactly the state before the run or the state
// after an uninterrupted run (directory, mirrors, cursors and run records
// together), and not be locked; the next run must converge to the export of
// an uninterrupted run, ids included: ids are AUTOINCREMENT values whose
// sequence rolls back with the transaction, and plans are applied in a
// sorted order, so the same sequence of runs gives the same ids.
func TestCrashConsistency(t *testing.T) {
	start := time.Now()
	ctx := t.Context()
	bin := buildLearnsync(t)
	work := t.TempDir()

	// v1 is the first import. v2 is a later export of the same company with
	// 1,000 people gone, a fifth of the titles changed, 100 new groups and
	// every membership redrawn: the later run deactivates, updates,
	// creates groups, moves memberships and revokes seats in one commit.
	org1 := filepath.Join(work, "org1.json")
	org2 := filepath.Join(work, "org2.json")
	writeSynthetic(t, org1, benchorg.Org{Users: crashUsers, Groups: crashGroups, MembersPerGroup: crashMembers, Seed: 1})
	writeSynthetic(t, org2, benchorg.Org{Users: crashUsers - 1000, Groups: crashGroups + 100, MembersPerGroup: crashMembers, Seed: 1, Changed: 0.2})

	// The uninterrupted sequence, in its own directory.
	refDir := filepath.Join(work, "ref")
	refDB := filepath.Join(refDir, "d.db")
	before := readDirState(t, ctx, filepath.Join(work, "empty", "d.db"), true)
	d1 := mustRunBinary(t, bin, writeCrashConfig(t, refDir, "first.yaml", refDB, org1))
	after1 := readDirState(t, ctx, refDB, true)
	template := filepath.Join(work, "after-first.db")
	copyDB(t, refDB, template)
	d2 := mustRunBinary(t, bin, writeCrashConfig(t, refDir, "later.yaml", refDB, org2))
	after2 := readDirState(t, ctx, refDB, true)
	if len(after1.Export.Users) < crashUsers*9/10 || after2.Runs != 2 || reflect.DeepEqual(after1.Export, after2.Export) {
		t.Fatalf("reference runs did not do what the test needs: %d users, %d runs", len(after1.Export.Users), after2.Runs)
	}
	// v3 changes a few more titles: an incremental run (the file changed,
	// its rows are compared by hash and only the changed ones planned).
	org3 := filepath.Join(work, "org3.json")
	writeSynthetic(t, org3, benchorg.Org{Users: crashUsers - 1000, Groups: crashGroups + 100, MembersPerGroup: crashMembers, Seed: 1, Changed: 0.22})
	template2 := filepath.Join(work, "after-later.db")
	copyDB(t, refDB, template2)
	d3 := mustRunBinary(t, bin, writeCrashConfig(t, refDir, "incremental.yaml", refDB, org3))
	after3 := readDirState(t, ctx, refDB, true)
	if after3.Runs != 3 || reflect.DeepEqual(after2.Export, after3.Export) || lastReconcile(t, ctx, refDB) != reconcile.ModeIncremental+" " {
		t.Fatalf("the third reference run was not an incremental run that changed something: %d runs, %s", after3.Runs, lastReconcile(t, ctx, refDB))
	}
	t.Logf("uninterrupted: first import %v, later run %v, incremental run %v", d1.Round(time.Millisecond), d2.Round(time.Millisecond), d3.Round(time.Millisecond))

	type kind struct {
		name          string
		config        string
		db            string
		setup         func(t *testing.T)
		before, after dirState
		took          time.Duration
	}
	firstDir, laterDir, incDir := filepath.Join(work, "first"), filepath.Join(work, "later"), filepath.Join(work, "incremental")
	kinds := []*kind{
		{name: "first import", config: writeCrashConfig(t, firstDir, "learnsync.yaml", filepath.Join(firstDir, "d.db"), org1),
			db: filepath.Join(firstDir, "d.db"), before: before, after: after1, took: d1},
		{name: "later run", config: writeCrashConfig(t, laterDir, "learnsync.yaml", filepath.Join(laterDir, "d.db"), org2),
			db: filepath.Join(laterDir, "d.db"), before: after1, after: after2, took: d2},
		{name: "incremental run", config: writeCrashConfig(t, incDir, "learnsync.yaml", filepath.Join(incDir, "d.db"), org3),
			db: filepath.Join(incDir, "d.db"), before: after2, after: after3, took: d3},
	}
	kinds[0].setup = func(t *testing.T) { removeDB(t, kinds[0].db) }
	kinds[1].setup = func(t *testing.T) { removeDB(t, kinds[1].db); copyDB(t, template, kinds[1].db) }
	kinds[2].setup = func(t *testing.T) { removeDB(t, kinds[2].db); copyDB(t, template2, kinds[2].db) }

	// The two kinds run side by side, each in its own directory. Kill
	// delays are stratified over [0, 1.1 × the run's duration) so that
	// every phase is hit: start-up and migration, fetch and plan, the
	// commit, the checkpoint after it, and the exit. The duration is
	// re-measured on every run that recovers from a kill (it does the whole
	// work again, under the same load as the killed runs). Two more kills
	// per kind aim at the short moments after COMMIT: the first write to
	// the database file (the WAL checkpoint), and the run's last log line
	// (pruning, printing, closing).
	const perKind = crashKills / 2
	var (
		mu     sync.Mutex
		counts [numPhases]int
	)
	t.Run("kill", func(t *testing.T) {
		for seed, k := range kinds {
			t.Run(k.name, func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(2024, uint64(seed)))
				took, kills := k.took, 0
				for n := 0; n < perKind+2 || kills < crashKills/2 && n < 2*perKind; n++ {
					var at killAt
					switch {
					case n < perKind:
						at.delay = time.Duration((float64(n) + rng.Float64()) / perKind * 1.1 * float64(took))
					case n == perKind:
						at.checkpoint = true
					case n == perKind+1:
						at.logged = `msg="run finished"`
					default: // more kills needed: the runs were faster than measured
						at.delay = time.Duration(rng.Float64() * 0.8 * float64(took))
					}
					k.setup(t)
					res := kill(t, bin, k.config, k.db, at)

					got := readDirState(t, ctx, k.db, true)
					var ph phase
					switch {
					case got.equal(k.before) && !res.killed:
						t.Fatalf("trial %d: the run exited by itself (%s) and left the state before the run", n, res.exit)
					case got.equal(k.before) && res.wal >= walStarted:
						ph = killedInCommit
					case got.equal(k.before):
						ph = killedBeforeCommit
					case got.equal(k.after) && res.killed:
						ph = killedAfterCommit
					case got.equal(k.after):
						ph = finishedFirst
					default:
						t.Fatalf("trial %d, killed %v (WAL %d bytes): the directory is neither as before nor as after the run:\n%s",
							n, res.when, res.wal, got.diff(k.before, k.after))
					}
					if res.killed {
						kills++
					}
					mu.Lock()
					counts[ph]++
					mu.Unlock()
					t.Logf("trial %2d: %s, %v into a run of ~%v (WAL %d B): %s", n, at, res.when.Round(time.Millisecond),
						took.Round(time.Millisecond), res.wal, ph)

					// The lock died with the process: the next run gets it at
					// once (it would give up after 1 ms) and converges to the
					// uninterrupted result.
					d := mustRunBinary(t, bin, k.config, "--lock-wait", "1ms")
					// When the killed run committed, the converging run has
					// nothing to do and writes nothing, not even its record:
					// the killed run's record is the last. Otherwise it
					// records the run the kill lost.
					wantRuns := k.after.Runs
					if ph != killedAfterCommit && ph != finishedFirst {
						took = (took + d) / 2
					}
					conv := readDirState(t, ctx, k.db, false)
					if !conv.equalDirectory(k.after) || conv.Runs != wantRuns {
						t.Fatalf("trial %d: the run after the kill did not converge to the uninterrupted result (runs %d, want %d):\n%s",
							n, conv.Runs, wantRuns, conv.diff(k.after, k.after))
					}
				}
			})
		}
	})
	kills := counts[killedBeforeCommit] + counts[killedInCommit] + counts[killedAfterCommit]
	t.Logf("%d kills: %d before the commit, %d inside it (rolled back), %d after it (checkpoint, pruning, exit); %d runs finished before the kill; took %v",
		kills, counts[killedBeforeCommit], counts[killedInCommit], counts[killedAfterCommit], counts[finishedFirst],
		time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}
	if kills < crashKills {
		t.Errorf("only %d runs were killed while running, want at least %d", kills, crashKills)
	}
	if counts[killedInCommit] == 0 {
		t.Errorf("no kill landed inside a commit")
	}
}

// phase is where a kill landed, as told by the state it left and the WAL.
type phase int

const (
	killedBeforeCommit phase = iota
	killedInCommit
	killedAfterCommit
	finishedFirst
	numPhases
)

func (p phase) String() string {
	return [...]string{
		"state before the run (killed before the commit)",
		"state before the run (killed inside the commit, rolled back)",
		"state after the run (killed after the commit)",
		"state after the run (it finished before the kill)",
	}[p]
}

// killAt says when to kill a run: after a delay, at the first write to the
// database file (only the WAL checkpoint after COMMIT writes it), or when
// the run has logged a line containing logged.
type killAt struct {
	delay      time.Duration
	checkpoint bool
	logged     string
}

func (a killAt) String() string {
	switch {
	case a.checkpoint:
		return "kill at the first write to the database file"
	case a.logged != "":
		return "kill at the log line " + a.logged
	}
	return fmt.Sprintf("kill after %v", a.delay.Round(time.Millisecond))
}

// killResult is what happened to a run.
type killResult struct {
	killed bool          // still running when SIGKILL was sent
	exit   string        // how it ended, when it was not killed
	when   time.Duration // when it was killed or ended
	wal    int64         // the largest WAL size seen before the kill
}

// kill starts `learnsync run --once` and sends it SIGKILL as at says,
// watching the size of its WAL meanwhile.
func kill(t *testing.T, bin, config, db string, at killAt) killResult {
	t.Helper()
	fileSize := func(p string) (int64, time.Time) {
		st, err := os.Stat(p)
		if err != nil {
			return -1, time.Time{}
		}
		return st.Size(), st.ModTime()
	}
	size0, mtime0 := fileSize(db)
	logs := &watchWriter{want: at.logged}
	cmd := exec.Command(bin, "run", "--once", "--config", config)
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := func(res killResult, err error) killResult {
		res.exit = "exit 0"
		if err != nil {
			res.exit = err.Error()
		}
		return res
	}
	var res killResult
	for {
		select {
		case err := <-done:
			res.when = time.Since(start)
			return exited(res, err)
		default:
		}
		if size, _ := fileSize(db + "-wal"); size > res.wal {
			res.wal = size
		}
		fire := time.Since(start) >= at.delay
		switch {
		case at.checkpoint:
			// A new database is created with one page; an existing one is
			// left alone until the checkpoint.
			size, mtime := fileSize(db)
			fire = size > max(size0, 64<<10) || size0 > 0 && !mtime.Equal(mtime0)
		case at.logged != "":
			fire = logs.seen.Load()
		}
		if fire {
			break
		}
		time.Sleep(200 * time.Microsecond)
	}
	res.when = time.Since(start)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	err := <-done
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
		res.killed = true
		return res
	}
	return exited(res, err) // it finished just before the signal
}

// watchWriter notes when a string has been written to it.
type watchWriter struct {
	want string
	mu   sync.Mutex
	buf  []byte
	seen atomic.Bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	if w.want == "" || w.seen.Load() {
		return len(p), nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if bytes.Contains(w.buf, []byte(w.want)) {
		w.seen.Store(true)
	}
	if i := bytes.LastIndexByte(w.buf, '\n'); i >= 0 {
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// copyDB copies a closed database (and its WAL, if it has one).
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	removeDB(t, to)
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(from + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// removeDB removes a database with its WAL, shared memory and lock files.
func removeDB(t *testing.T, db string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm", ".lock"} {
		if err := os.Remove(db + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// lastReconcile says how the newest run of a directory reconciled.
func lastReconcile(t *testing.T, ctx context.Context, db string) string {
	t.Helper()
	st, err := directory.Open(ctx, db, directory.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs(ctx, 1)
	if err != nil || len(runs) == 0 {
		t.Fatalf("read runs: %v", err)
	}
	return runs[0].Reconcile + " " + runs[0].FullReason
}
