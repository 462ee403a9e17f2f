package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/directory/dirtest"
	"github.com/learnsync/learnsync/internal/benchorg"
	"github.com/learnsync/learnsync/internal/testkit"
)

// The service tests run learnsync as its own process, so that signals are
// real: the child is this test binary re-executed into
// TestServiceHelperProcess, which calls Main exactly as main does. That
// costs no build (linking the command takes seconds).

// TestServiceHelperProcess is the child process of the service tests.
func TestServiceHelperProcess(t *testing.T) {
	if os.Getenv("LEARNSYNC_HELPER_PROCESS") != "1" {
		t.Skip("runs only as a child of the service tests")
	}
	args := strings.Split(os.Getenv("LEARNSYNC_ARGS"), "\n")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, args, os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// serviceProcess is a running `learnsync run` (service mode).
type serviceProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *testkit.LogBuffer
	done   chan struct{}
	err    error
	base   string // http://host:port of the ops endpoint
}

// startService starts `learnsync <args>` in dir and waits until its ops
// endpoint listens.
func startService(t *testing.T, dir string, args ...string) *serviceProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServiceHelperProcess$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LEARNSYNC_HELPER_PROCESS=1", "LEARNSYNC_ARGS="+strings.Join(args, "\n"))
	return startProcess(t, cmd)
}

// startProcess starts cmd, a `learnsync run`, and waits until its ops
// endpoint listens.
func startProcess(t *testing.T, cmd *exec.Cmd) *serviceProcess {
	t.Helper()
	p := &serviceProcess{t: t, cmd: cmd, stderr: &testkit.LogBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("learnsync's log:\n%s", p.stderr.String())
		}
	})
	line := p.waitLog(`msg="service started"`, 10*time.Second)
	m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no address in %q", line)
	}
	p.base = "http://" + m[1]
	return p
}

// waitLog waits for a log line containing s and returns it.
func (p *serviceProcess) waitLog(s string, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(line, s) {
				return line
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("learnsync exited (%v) before logging %q", p.err, s)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("learnsync did not log %q within %v", s, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// count counts the log lines containing s.
func (p *serviceProcess) count(s string) int { return strings.Count(p.stderr.String(), s) }

func (p *serviceProcess) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// exitCode waits for the process to end and returns its exit code.
func (p *serviceProcess) exitCode(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("learnsync did not exit within %v", timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *serviceProcess) get(path string) (int, []byte) {
	p.t.Helper()
	return testkit.Get(p.t, p.base+path)
}

// waitReady polls /readyz until it answers 200.
func (p *serviceProcess) waitReady(timeout time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	for {
		code, body := p.get("/readyz")
		if code == http.StatusOK {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			p.t.Fatalf("not ready within %v: %d %s", timeout, code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metrics scrapes /metrics and parses it as Prometheus does.
func (p *serviceProcess) metrics() map[string]*dto.MetricFamily {
	p.t.Helper()
	code, body := p.get("/metrics")
	if code != http.StatusOK {
		p.t.Fatalf("/metrics = %d", code)
	}
	return testkit.ParseMetrics(p.t, body)
}

// copyFile copies a file of the repository into dir.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// statusDoc is the part of the status document compared between /status
// and `learnsync status --output json`.
type statusDoc struct {
	Service *struct {
		Ready bool `json:"ready"`
	} `json:"service"`
	Sources []struct {
		Name      string          `json:"name"`
		Type      string          `json:"type"`
		Cursor    bool            `json:"cursor"`
		FetchedAt string          `json:"fetched_at"`
		CursorAge *float64        `json:"cursor_age_seconds"`
		Users     int             `json:"users"`
		Groups    int             `json:"groups"`
		LastFetch json.RawMessage `json:"last_fetch"`
		Frozen    *string         `json:"frozen_since"`
	} `json:"sources"`
	Runs   json.RawMessage `json:"runs"`
	People json.RawMessage `json:"people"`
	Pools  json.RawMessage `json:"pools"`
}

// A newcomer follows the README: copy the example, start the service on
// it, and look at the ops endpoint; SIGTERM ends it with exit 0. `learnsync
// status` then shows what /status showed.
func TestServiceNewcomer(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join("..", "..", "examples", "org.json"), filepath.Join(dir, "examples", "org.json"))
	example, err := os.ReadFile(filepath.Join("..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Port 0: the system picks a free port; the log says which.
	cfg := strings.Replace(string(example), "listen: 127.0.0.1:9750", "listen: 127.0.0.1:0", 1)
	if cfg == string(example) {
		t.Fatal("config.example.yaml has no `listen: 127.0.0.1:9750` to replace")
	}
	if err := os.WriteFile(filepath.Join(dir, "config.example.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	p := startService(t, dir, "run", "--config", "config.example.yaml")
	if !strings.HasPrefix(p.base, "http://127.0.0.1:") {
		t.Errorf("the ops endpoint listens on %s, want loopback", p.base)
	}
	took := p.waitReady(5 * time.Second)
	t.Logf("ready %v after the endpoint listened", took)

	if code, body := p.get("/healthz"); code != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := p.get("/readyz"); code != 200 || string(body) != "ready\n" {
		t.Errorf("/readyz = %d %q", code, body)
	}
	fams := p.metrics()
	testkit.CheckMetrics(t, fams, []testkit.Sample{
		{Name: "learnsync_runs_total", Labels: []string{"result=ok"}, Value: 1},
		{Name: "learnsync_runs_total", Labels: []string{"result=blocked"}, Value: 0},
		{Name: "learnsync_people", Labels: []string{"state=active"}, Value: 10},
		{Name: "learnsync_pool_seats", Labels: []string{"pool=learning-pro"}, Value: 3},
		{Name: "learnsync_pool_seats_assigned", Labels: []string{"pool=learning-pro"}, Value: 3},
		{Name: "learnsync_pool_seats_waiting", Labels: []string{"pool=learning-pro"}, Value: 2},
		{Name: "learnsync_plan_changes_total", Labels: []string{"kind=person_create"}, Value: 10},
		{Name: "learnsync_fetch_duration_seconds", Labels: []string{"source=hr", "mode=full"}, Value: 1},
		{Name: "learnsync_ready", Value: 1},
		{Name: "learnsync_run_blocked", Value: 0},
	})
	if v := testkit.MetricValue(t, fams, "learnsync_source_last_success_timestamp_seconds", "source=hr"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success of hr = %v", v)
	}

	code, body := p.get("/status")
	if code != 200 {
		t.Fatalf("/status = %d %s", code, body)
	}
	var live statusDoc
	if err := json.Unmarshal(body, &live); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	if live.Service == nil || !live.Service.Ready || len(live.Sources) != 1 || live.Sources[0].Name != "hr" ||
		live.Sources[0].CursorAge == nil || !strings.Contains(string(live.Sources[0].LastFetch), `"result": "ok"`) {
		t.Errorf("/status = %s", body)
	}

	p.signal(syscall.SIGTERM)
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	if p.count(`msg="service stopped"`) != 1 {
		t.Error("the service did not log its stop")
	}

	// The command reads the same document from the directory.
	var out, errs bytes.Buffer
	if code := Main(context.Background(), []string{"status", "--output", "json", "--config", filepath.Join(dir, "config.example.yaml")},
		&out, &errs, os.LookupEnv); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errs.String())
	}
	var cli statusDoc
	if err := json.Unmarshal(out.Bytes(), &cli); err != nil {
		t.Fatalf("status --output json: %v\n%s", err, out.String())
	}
	if cli.Service != nil {
		t.Error("the command's status has a service part")
	}
	for _, d := range []*statusDoc{&live, &cli} {
		d.Service = nil
		for i := range d.Sources {
			d.Sources[i].CursorAge = nil // later for the command
		}
	}
	a, _ := json.Marshal(live)
	b, _ := json.Marshal(cli)
	if !bytes.Equal(a, b) {
		t.Errorf("`learnsync status` differs from /status:\n/status: %s\nstatus:  %s", a, b)
	}
}

const reloadConfig = `
directory: {dsn: learnsync.db}
sources:
  - name: hr
    type: file
    schedule: "@every 300ms"
    config: {path: org.json}
licenses:
  - {name: learning-basic, all_active: true}
%s
server: {listen: "127.0.0.1:0"}
`

// SIGHUP reloads the configuration: a bad one is refused and the service
// goes on with the old one; a good one takes effect.
func TestServiceReloadOnSIGHUP(t *testing.T) { dirtest.Each(t, testServiceReloadOnSIGHUP) }

func testServiceReloadOnSIGHUP(t *testing.T) {
	c := newCLI(t)
	c.writeJSON("org.json", fileOrg{Users: []fileUser{person("1", "alice", "Engineer"), person("2", "bob", "Engineer")}})
	c.write("learnsync.yaml", fmt.Sprintf(reloadConfig, ""))
	p := startService(t, c.dir, "run", "--config", "learnsync.yaml")
	p.waitReady(5 * time.Second)

	c.write("learnsync.yaml", fmt.Sprintf(reloadConfig, "colour: blue"))
	p.signal(syscall.SIGHUP)
	line := p.waitLog("configuration reload refused", 5*time.Second)
	if !strings.Contains(line, "colour: unknown key") {
		t.Errorf("the refusal does not say why: %s", line)
	}
	// Still running on the old configuration: ready, and the schedule ticks.
	ticks := p.count("trigger=schedule")
	deadline := time.Now().Add(5 * time.Second)
	for p.count("trigger=schedule") < ticks+2 {
		if time.Now().After(deadline) {
			t.Fatal("the schedule stopped after a refused reload")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := p.get("/readyz"); code != 200 {
		t.Errorf("/readyz after a refused reload = %d %s", code, body)
	}

	c.write("learnsync.yaml", fmt.Sprintf(reloadConfig, "  - {name: learning-pro, seats: 1, groups: [\"hr/Engineering\"]}\n"+
		"  - {name: mentoring, seats: 5, all_active: true}"))
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded", 5*time.Second)
	p.waitLog("trigger=reload", 5*time.Second)
	code, body := p.get("/status")
	if code != 200 {
		t.Fatalf("/status = %d", code)
	}
	var st struct {
		Pools []directory.ExportLicense `json:"pools"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Pools) != 3 || st.Pools[2].Name != "mentoring" || st.Pools[2].Assigned != 2 {
		t.Errorf("pools after the reload = %+v", st.Pools)
	}
	fams := p.metrics()
	if got := testkit.MetricValue(t, fams, "learnsync_config_reloads_total", "result=refused"); got != 1 {
		t.Errorf("refused reloads = %v", got)
	}
	if got := testkit.MetricValue(t, fams, "learnsync_config_reloads_total", "result=ok"); got != 1 {
		t.Errorf("ok reloads = %v", got)
	}

	p.signal(syscall.SIGTERM)
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

// SIGTERM during an apply: with time enough the apply finishes and is
// kept whole; with too little (server.shutdown_timeout) it is abandoned and
// nothing of it is kept. Either way the database is sound and the exit
// code is 0.
func TestServiceSIGTERMDuringApply(t *testing.T) { dirtest.Each(t, testServiceSIGTERMDuringApply) }

func testServiceSIGTERMDuringApply(t *testing.T) {
	org := filepath.Join(t.TempDir(), "org.json")
	f, err := os.Create(org)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	const users = 20_000
	if err := (benchorg.Org{Users: users, Groups: 400, MembersPerGroup: 50, Seed: 7}).Write(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	for _, tt := range []struct {
		name     string
		timeout  string
		finished bool
	}{
		{"apply finishes", "60s", true},
		{"apply abandoned", "1ms", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			c.write("learnsync.yaml", fmt.Sprintf(`
directory: {dsn: learnsync.db}
sources: [{name: hr, type: file, config: {path: %q}}]
licenses: [{name: basic, all_active: true}]
server: {listen: "127.0.0.1:0", shutdown_timeout: %s}
`, org, tt.timeout))
			p := startService(t, c.dir, "run", "--config", "learnsync.yaml", "--log-level", "debug")
			p.waitLog(`msg=applying`, 20*time.Second)
			p.signal(syscall.SIGTERM)
			if code := p.exitCode(30 * time.Second); code != 0 {
				t.Errorf("exit code = %d, want 0", code)
			}
			logs := p.stderr.String()
			stopping := strings.Index(logs, "waiting for the run in progress")
			if stopping < 0 {
				t.Fatal("SIGTERM did not arrive during the run")
			}

			st, err := c.openDirectory(directory.Options{})
			if err != nil {
				t.Fatalf("the database does not open: %v", err)
			}
			defer st.Close()
			if v, err := st.IntegrityCheck(t.Context()); err != nil || v != "ok" {
				t.Errorf("integrity_check = %q, %v", v, err)
			}
			status, err := st.Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			runs, err := st.Runs(t.Context(), 10)
			if err != nil {
				t.Fatal(err)
			}
			people := status.Active + status.Inactive
			if tt.finished {
				finished := strings.Index(logs, `msg="run finished"`)
				if finished < stopping || len(runs) != 1 || runs[0].Summary.Create != people || people < users*9/10 ||
					len(status.Sources) != 1 || status.Sources[0].Users != users || status.Pools[0].Assigned != status.Active {
					t.Errorf("the apply did not finish whole after SIGTERM: runs %d, people %d, status %+v", len(runs), people, status)
				}
			} else {
				if !strings.Contains(logs, "abandoning it") || len(runs) != 0 || people != 0 || len(status.Sources) != 0 || len(status.Pools) != 0 {
					t.Errorf("the abandoned apply left something: runs %d, people %d, status %+v", len(runs), people, status)
				}
			}
		})
	}
}

// The ops endpoint stays on the machine unless the configuration opts in;
// --allow-mass-deactivation is for one run, not for a service.
func TestServiceUsageErrors(t *testing.T) {
	c := newCLI(t)
	c.writeJSON("org.json", fileOrg{Users: []fileUser{person("1", "alice", "Engineer")}})
	c.write("learnsync.yaml", `
directory: {dsn: learnsync.db}
sources: [{name: hr, type: file, config: {path: org.json}}]
server: {listen: "0.0.0.0:0"}
`)
	_, errs := c.mustRun(exitUsage, "run")
	if !strings.Contains(errs, "server.listen") || !strings.Contains(errs, "allow_remote") {
		t.Errorf("stderr = %s", errs)
	}
	_, errs = c.mustRun(exitUsage, "run", "--allow-mass-deactivation")
	if !strings.Contains(errs, "--once") {
		t.Errorf("stderr = %s", errs)
	}
}
