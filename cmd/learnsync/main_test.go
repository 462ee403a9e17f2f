package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/directory/dirtest"
	"github.com/learnsync/learnsync/internal/pgtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (rerun with -update if the change is intended):\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// cli runs the learnsync entry point as a user would, in dir, with env.
type cli struct {
	t   *testing.T
	dir string
	env map[string]string
	// dsn, inside dirtest.Each's postgres subtest, is the test's own
	// PostgreSQL database: the configurations written then use it instead
	// of learnsync.db (see write).
	dsn string
}

func newCLI(t *testing.T) *cli {
	c := &cli{t: t, dir: t.TempDir(), env: map[string]string{}}
	if dirtest.Backend(t) == directory.DriverPostgres {
		c.dsn = pgtest.DSN(t)
	}
	return c
}

// sqliteDirectory is the directory line of the tests' configurations.
const sqliteDirectory = "directory: {dsn: learnsync.db}"

// openDirectory opens the test's directory: learnsync.db, or its
// PostgreSQL database in dirtest.Each's postgres subtest.
func (c *cli) openDirectory(opts directory.Options) (*directory.Store, error) {
	if c.dsn != "" {
		return directory.OpenDriver(c.t.Context(), directory.DriverPostgres, c.dsn, opts)
	}
	return directory.Open(c.t.Context(), c.path("learnsync.db"), opts)
}

// path returns a file path inside the test's directory.
func (c *cli) path(name string) string { return filepath.Join(c.dir, name) }

func (c *cli) write(name, content string) string {
	c.t.Helper()
	if name == "learnsync.yaml" && c.dsn != "" {
		if !strings.Contains(content, sqliteDirectory) {
			c.t.Fatalf("a configuration for both backends has %q", sqliteDirectory)
		}
		content = strings.Replace(content, sqliteDirectory, fmt.Sprintf("directory: {driver: postgres, dsn: %q}", c.dsn), 1)
	}
	p := c.path(name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *cli) writeJSON(name string, v any) string {
	c.t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		c.t.Fatal(err)
	}
	return c.write(name, string(b))
}

// run calls Main with args (--config defaults to the test's learnsync.yaml).
func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	hasConfig := slices.ContainsFunc(args, func(a string) bool { return a == "--config" || strings.HasPrefix(a, "--config=") })
	if !hasConfig && len(args) > 0 && args[0] != "--help" {
		args = append(args, "--config", c.path("learnsync.yaml"))
	}
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
	code = Main(context.Background(), args, &out, &errb, lookup)
	return code, out.String(), errb.String()
}

// mustRun runs and fails the test unless the exit code is want.
func (c *cli) mustRun(want int, args ...string) (stdout, stderr string) {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != want {
		c.t.Fatalf("learnsync %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

// export runs `learnsync export` and decodes it.
func (c *cli) export() exportDoc {
	c.t.Helper()
	out, _ := c.mustRun(0, "export")
	var doc exportDoc
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		c.t.Fatalf("export is not the documented JSON: %v\n%s", err, out)
	}
	return doc
}

// planJSON runs `learnsync plan --output json` and decodes it.
func (c *cli) plan(want int) planOut {
	c.t.Helper()
	out, _ := c.mustRun(want, "plan", "--output", "json")
	var p planOut
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		c.t.Fatalf("plan JSON: %v\n%s", err, out)
	}
	return p
}

// runOnce runs `learnsync run --once`, expects exit code want, and when the
// run applied (0 or 4), checks that a new plan is empty.
func (c *cli) runOnce(want int, extra ...string) string {
	c.t.Helper()
	out, _ := c.mustRun(want, append([]string{"run", "--once"}, extra...)...)
	if want == 0 {
		if p := c.plan(0); len(p.Changes) != 0 {
			c.t.Fatalf("plan after an apply is not empty: %+v", p.Changes)
		}
	}
	return out
}

// wantList fails the test when got is not want, naming what was checked.
func wantList(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// exportDoc is `learnsync export` decoded strictly into the export's own
// types; the exact JSON is pinned by testdata/export.golden
// (TestEndToEndFileSource).
type exportDoc directory.Export

func (d exportDoc) user(email string) int {
	for i, u := range d.Users {
		if strings.EqualFold(u.Email, email) {
			return i
		}
	}
	return -1
}

func (d exportDoc) license(name string) (seats, assigned, waiting int) {
	for _, l := range d.Licenses {
		if l.Name == name {
			return l.Seats, l.Assigned, l.Waiting
		}
	}
	return -1, -1, -1
}

type planOut struct {
	Changes []struct {
		Kind   string `json:"kind"`
		Op     string `json:"op"`
		Object string `json:"object"`
	} `json:"changes"`
	Summary map[string]int `json:"summary"`
	Result  string         `json:"result"`
	Blocked string         `json:"blocked"`
}
