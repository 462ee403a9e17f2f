package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/learnsync/learnsync/internal/benchorg"
)

// The scenarios, as named in results.csv.
const (
	scSHA      = "sha256sum"
	scImport   = "first-import"
	scNoChange = "no-change"
	scOnePct   = "one-percent"
	scFull     = "full"
	scChanges  = "changes" // the changes curve: Changed people changed
)

// Org shape: groups of 100, a twentieth as many groups as people.
const (
	membersPerGroup = 100
	groupsPerPerson = 20
)

// Row is one measured child process.
type Row struct {
	Users, Groups, Memberships int
	Scenario                   string
	// Changed is the number of people asked to change (the curve and the
	// 1% run); Updated is what the run reported.
	Changed, Updated int
	Wall, User, Sys  float64 // seconds
	MaxRSSKB         int64
	FileBytes        int64
	Exit             int
	Reconcile        string // incremental or full, when the run says
	Took             string // the run's own duration ("took=")
	// Fetch, Plan and Apply split Took by stage ("fetch=", "plan=",
	// "apply="); empty in rows measured before the run logged them.
	Fetch, Plan, Apply string
	When               string // RFC 3339
	Load               string // the machine's 1-minute load average before the run
}

// loadAvg reads the 1-minute load average ("" where there is none).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// build compiles the learnsync binary into dir.
func build(dir string) (string, error) {
	bin := filepath.Join(dir, "learnsync")
	fmt.Fprintln(os.Stderr, "benchrun: go build -o", bin, "./cmd/learnsync")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/learnsync")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build: %w", err)
	}
	return bin, nil
}

// writeOrg writes the org of n people with the share changed (rounded to
// benchorg's 1/10000 steps) to path and returns its size.
func writeOrg(path string, n int, units int, seed int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	// benchorg rounds Changed*10000 down: aim between two steps.
	changed := 0.0
	if units > 0 {
		changed = (float64(units) + 0.5) / 10000
	}
	o := benchorg.Org{Users: n, Groups: max(1, n/groupsPerPerson), MembersPerGroup: membersPerGroup, Seed: seed, Changed: changed}
	w := bufio.NewWriterSize(f, 1<<20)
	err = o.Write(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	st, serr := os.Stat(path)
	if err == nil {
		err = serr
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// child is one measured process.
type child struct {
	wall, user, sys float64
	maxRSSKB        int64
	exit            int
	stdout, stderr  string
}

// runChild runs name args in dir and measures it.
func runChild(ctx context.Context, timeout time.Duration, dir, name string, args ...string) (child, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	errs := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = &out, errs
	start := time.Now()
	err := cmd.Run()
	c := child{wall: time.Since(start).Seconds(), stdout: out.String(), stderr: errs.String()}
	if cmd.ProcessState == nil {
		return c, err
	}
	c.exit = cmd.ProcessState.ExitCode()
	c.user = cmd.ProcessState.UserTime().Seconds()
	c.sys = cmd.ProcessState.SystemTime().Seconds()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		c.maxRSSKB = ru.Maxrss // KB on Linux
	}
	if ctx.Err() != nil {
		return c, fmt.Errorf("%s: killed after %v", name, timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil // the exit code is in the row
	}
	return c, err
}

// tailBuffer keeps the lines with the run's summary and the last max bytes.
type tailBuffer struct {
	max     int
	buf     []byte
	summary []string
	partial []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		line := string(t.partial[:i])
		t.partial = t.partial[i+1:]
		if strings.Contains(line, `msg="run finished"`) {
			t.summary = append(t.summary, line)
		}
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	return strings.Join(t.summary, "\n") + "\n" + string(t.buf)
}

var _ io.Writer = (*tailBuffer)(nil)
