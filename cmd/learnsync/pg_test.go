package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/internal/pgtest"
)

// directory copy moves a directory filled by a run into PostgreSQL; the
// export is the same there, a second copy into it is refused (exit 2), bad
// arguments exit 2.
func TestDirectoryCopyCommand(t *testing.T) {
	c := newCLI(t) // SQLite
	c.write("org.json", `{"users": [{"id": "u1", "email": "ann@example.com", "status": "active"}], "groups": []}`)
	c.write("learnsync.yaml", sqliteDirectory+"\nsources:\n  - {name: hr, type: file, config: {path: org.json}}\n")
	c.runOnce(0)
	want := c.export()
	dsn := pgtest.DSN(t)
	out, _ := c.mustRun(0, "directory", "copy", "--from", c.path("learnsync.db"), "--to", dsn)
	if !strings.Contains(out, "people 1") {
		t.Errorf("copy output: %s", out)
	}
	pg := &cli{t: t, dir: c.dir, env: c.env, dsn: dsn}
	pg.write("learnsync.yaml", sqliteDirectory+"\nsources:\n  - {name: hr, type: file, config: {path: org.json}}\n")
	if got := pg.export(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("export after the copy:\n%+v\nwant\n%+v", got, want)
	}
	pg.runOnce(0) // the copy is a working directory: nothing to change
	if _, errs := c.mustRun(2, "directory", "copy", "--from", c.path("learnsync.db"), "--to", dsn); !strings.Contains(errs, "not empty") {
		t.Errorf("copy into a full target: %s", errs)
	}
	c.mustRun(2, "directory", "copy", "--from", c.path("learnsync.db"))
	c.mustRun(2, "directory", "copy", "--from", c.path("missing.db"), "--to", dsn)
	c.mustRun(2, "directory", "copy", "--from", c.path("learnsync.db"), "--to", c.path("other.db"))
}

// An unreachable server fails run --once with exit 1 and a clear message;
// the DSN's password is in no output.
func TestPostgresUnreachable(t *testing.T) {
	c := newCLI(t)
	c.env["DB_DSN"] = "postgres://learnsync:hunter2secret@127.0.0.1:1/learnsync?connect_timeout=2"
	c.write("org.json", `{"users": [], "groups": []}`)
	c.write("learnsync.yaml", "directory: {driver: postgres, dsn: \"${DB_DSN}\"}\nsources:\n  - {name: hr, type: file, config: {path: org.json}}\n")
	out, errs := c.mustRun(1, "run", "--once")
	if strings.Contains(out+errs, "hunter2secret") {
		t.Errorf("output shows the password:\n%s\n%s", out, errs)
	}
	if !strings.Contains(errs, "127.0.0.1") {
		t.Errorf("the error does not name the server:\n%s", errs)
	}
	out, errs = c.mustRun(0, "validate")
	if strings.Contains(out+errs, "hunter2secret") {
		t.Errorf("validate shows the password:\n%s\n%s", out, errs)
	}
}
