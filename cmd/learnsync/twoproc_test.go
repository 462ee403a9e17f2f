package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/internal/benchorg"
	"github.com/learnsync/learnsync/reconcile"
)

// defaultLockWait is how long `run --once` waits for another run on the same
// directory unless --lock-wait says otherwise.
const defaultLockWait = 30 * time.Second

// TestTwoProcesses runs `learnsync run --once` twice at the same time on one
// database, with an organisation big enough (a first import takes a few
// hundred milliseconds or more) that the two always overlap. Only one may apply: with the default lock
// wait (30 s) the other waits for it and then finds nothing left to do;
// with a --lock-wait shorter than a run it exits 1 naming the holder's pid
// and the lock file, having changed nothing.
func TestTwoProcesses(t *testing.T) {
	ctx := t.Context()
	bin := buildLearnsync(t)
	work := t.TempDir()
	org := filepath.Join(work, "org.json")
	writeSynthetic(t, org, benchorg.Org{Users: crashUsers, Groups: crashGroups, MembersPerGroup: crashMembers, Seed: 1})

	// What one run alone makes of an empty directory.
	refDB := filepath.Join(work, "ref", "d.db")
	mustRunBinary(t, bin, writeCrashConfig(t, filepath.Join(work, "ref"), "learnsync.yaml", refDB, org))
	single := readDirState(t, ctx, refDB, true)

	// newDir returns the config and database of a new directory; with
	// migrated set, the database exists with its schema and nothing else.
	newDir := func(t *testing.T, migrated bool) (config, db string) {
		dir := t.TempDir()
		db = filepath.Join(dir, "d.db")
		if migrated {
			st, err := directory.Open(ctx, db, directory.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
		}
		return writeCrashConfig(t, dir, "learnsync.yaml", db, org), db
	}

	// holdLock opens db and takes its run lock, as another process would.
	holdLock := func(t *testing.T, db string) (*directory.Store, func()) {
		st, err := directory.Open(ctx, db, directory.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		unlock, err := st.Lock(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		return st, unlock
	}
	// applied says whether r is the run that created everyone.
	applied := func(r procResult) bool {
		return r.code == 0 && strings.HasPrefix(r.stdout, fmt.Sprintf("run 1 ok: %d created", len(single.Export.Users)))
	}

	for _, tt := range []struct {
		name     string
		migrated bool
		why      string
	}{
		{"at once", true, ""},
		{"at once on a new database file", false,
			" (two processes on a new file must both migrate it safely and wait for the lock)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			config, db := newDir(t, tt.migrated)
			a, b := startRun(t, bin, config), startRun(t, bin, config)
			results := []procResult{a.wait(t), b.wait(t)}
			for _, r := range results {
				if r.code != 0 {
					t.Fatalf("a run exited %d%s:\n%s", r.code, tt.why, r)
				}
			}
			checkOneApplied(t, ctx, db, single, a, b, results)
		})
	}

	t.Run("waits for the holder", func(t *testing.T) {
		t.Parallel()
		config, db := newDir(t, true)
		st, unlock := holdLock(t, db)
		p := startRun(t, bin, config)
		time.Sleep(2 * time.Second)
		if p.exited() {
			unlock()
			t.Fatalf("the run did not wait for the lock:\n%s", p.wait(t))
		}
		if runs, err := st.Runs(ctx, 10); err != nil || len(runs) != 0 {
			t.Fatalf("the waiting run wrote %d runs (%v)", len(runs), err)
		}
		unlock()
		if r := p.wait(t); !applied(r) {
			t.Fatalf("after the lock was released the run did not apply:\n%s", r)
		}
	})

	t.Run("at once with a short wait", func(t *testing.T) {
		t.Parallel()
		config, db := newDir(t, true)
		// The wait is well below what a first import of this org takes (about
		// 0.4 s on an idle machine since the bulk inserts; more on a busy one).
		a, b := startRun(t, bin, config, "--lock-wait", "100ms"), startRun(t, bin, config, "--lock-wait", "100ms")
		ra, rb := a.wait(t), b.wait(t)
		winner, won, lost := a, ra, rb
		if ra.code != 0 {
			winner, won, lost = b, rb, ra
		}
		if !applied(won) {
			t.Fatalf("no run applied:\n%s\n%s", ra, rb)
		}
		checkLockedOut(t, lost, winner.cmd.Process.Pid, db+".lock")
		st := readDirState(t, ctx, db, true)
		if !st.equalDirectory(single) || st.Runs != 1 {
			t.Fatalf("the directory is not what one run makes (runs %d):\n%s", st.Runs, st.diff(single, single))
		}
	})

	t.Run("lock held past a short wait", func(t *testing.T) {
		t.Parallel()
		config, db := newDir(t, true)
		st, unlock := holdLock(t, db)
		defer unlock()
		start := time.Now()
		r := startRun(t, bin, config, "--lock-wait", "1s").wait(t)
		if waited := time.Since(start); waited < time.Second || waited > 15*time.Second {
			t.Errorf("gave up after %v, want 1s", waited)
		}
		checkLockedOut(t, r, os.Getpid(), st.LockPath())
		if runs, err := st.Runs(ctx, 10); err != nil || len(runs) != 0 {
			t.Errorf("the run that gave up recorded %d runs (%v)", len(runs), err)
		}
	})
}

// checkLockedOut checks that a run gave up on the lock with exit 1, no
// summary, and a message that names the holder's pid and the lock file.
func checkLockedOut(t *testing.T, r procResult, holder int, lockPath string) {
	t.Helper()
	want := fmt.Sprintf("learnsync: another learnsync is running on this directory (pid %d since ", holder)
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, lockPath) ||
		!strings.Contains(r.stderr, "try again when it has finished") {
		t.Errorf("want exit 1 and a message naming the holder (%q...) and %s; got:\n%s", want, lockPath, r)
	}
}

// checkOneApplied checks that of two runs on db one applied the first
// import and the other, though it started before the first had finished
// planning, found nothing to do: it waited for the lock.
func checkOneApplied(t *testing.T, ctx context.Context, db string, single dirState, a, b *proc, results []procResult) {
	t.Helper()
	got := readDirState(t, ctx, db, true)
	if !got.equalDirectory(single) {
		t.Fatalf("the directory is not what one run makes:\n%s", got.diff(single, single))
	}
	st, err := directory.Open(ctx, db, directory.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The second run had nothing to do: it recorded no run (a cycle with
	// nothing to do writes nothing) and printed an empty summary (and its duration).
	if len(runs) != 1 {
		t.Fatalf("%d runs recorded, want 1", len(runs))
	}
	first := runs[0]
	if first.Result != reconcile.ResultOK || first.Summary.Create != len(single.Export.Users) {
		t.Errorf("the first run %s created %d people, want %d", first.Result, first.Summary.Create, len(single.Export.Users))
	}
	created := fmt.Sprintf("run 1 ok: %d created", len(single.Export.Users))
	second := results[0]
	if strings.HasPrefix(second.stdout, created) {
		second = results[1]
	}
	const empty = "run 0 ok: 0 created, 0 updated, 0 deactivated, 0 reactivated, 0 deleted; groups 0; memberships +0 -0; licenses +0 -0\n"
	if !strings.HasPrefix(second.stdout, strings.TrimSuffix(empty, "\n")+" (") {
		t.Errorf("the second run printed %q, want an empty plan %q", second.stdout, empty)
	}
	// A run's StartedAt is when it got the lock; the processes' own start
	// times show that the second was already waiting.
	last := a.started
	if b.started.After(last) {
		last = b.started
	}
	if !last.Before(first.EndedAt) {
		t.Errorf("the runs did not overlap: the second process started at %v, the first run finished planning at %v",
			last, first.EndedAt)
	}
	// An empty plan shows the second run planned against the directory the
	// first committed: it got the lock after the first had finished.
}

// proc is a learnsync process started by a test.
type proc struct {
	started        time.Time
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan error
}

// procResult is how a process ended.
type procResult struct {
	code           int
	stdout, stderr string
}

func (r procResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// startRun starts `learnsync run --once` with extra flags.
func startRun(t *testing.T, bin, config string, extra ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"run", "--once", "--config", config}, extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// exited reports whether the process has ended, without waiting.
func (p *proc) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// wait waits (up to a minute more than the lock wait) for the process.
func (p *proc) wait(t *testing.T) procResult {
	t.Helper()
	var err error
	select {
	case err = <-p.done:
		p.done <- err
	case <-time.After(defaultLockWait + time.Minute):
		t.Fatalf("learnsync did not finish")
	}
	r := procResult{stdout: p.stdout.String(), stderr: p.stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return r
}
