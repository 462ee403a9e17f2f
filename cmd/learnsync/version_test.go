package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/internal/version"
)

// TestVersion: `learnsync version` and `learnsync --version` print the same
// line with the version, the commit and the Go version; --output json has
// the same fields; the help lists the command.
func TestVersion(t *testing.T) {
	c := newCLI(t)
	want := version.Get().String() + "\n"
	out, _ := c.mustRun(exitOK, "version")
	if out != want || !strings.HasPrefix(out, "learnsync ") || !strings.Contains(out, "(commit ") || !strings.HasSuffix(out, runtime.Version()+"\n") {
		t.Errorf("version printed %q, want %q", out, want)
	}
	if out, _ := c.mustRun(exitOK, "--version", "--config="+c.path("learnsync.yaml")); out != want {
		t.Errorf("--version printed %q, want %q", out, want)
	}
	out, _ = c.mustRun(exitOK, "version", "--output", "json")
	var got version.Info
	if err := json.Unmarshal([]byte(out), &got); err != nil || got != version.Get() {
		t.Errorf("version --output json = %s (%v), want %+v", out, err, version.Get())
	}
	c.mustRun(exitUsage, "version", "--output", "yaml")
	c.mustRun(exitUsage, "version", "extra")
	if out, _ := c.mustRun(exitOK, "--help"); !strings.Contains(out, "version") {
		t.Errorf("help does not list the version command:\n%s", out)
	}
}
