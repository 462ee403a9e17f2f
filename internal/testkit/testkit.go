// Package testkit holds helpers that the tests of several packages share:
// a log buffer that code under test may write to from several goroutines
// while the test reads it, the check of a connector config's validation
// errors, and the lookup of a sample in a Prometheus scrape. It depends on
// the standard library, connectors and Prometheus' text format only, so
// the tests of connectors, service and the command can all use it.
package testkit

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/learnsync/learnsync/connectors"
)

// LogBuffer collects log lines for assertions. It is safe for concurrent
// use: a slog handler may write to it while the test reads String.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// FieldPaths returns the field paths of errs, a Validate result, in their
// order. It fails the test for an error that is not a
// *connectors.FieldError and for a message that shows any of secrets.
func FieldPaths(tb testing.TB, errs []error, secrets ...string) []string {
	tb.Helper()
	var paths []string
	for _, err := range errs {
		var fe *connectors.FieldError
		if !errors.As(err, &fe) {
			tb.Errorf("%v is not a FieldError", err)
			continue
		}
		paths = append(paths, fe.Path)
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				tb.Errorf("message shows a secret: %v", err)
			}
		}
	}
	return paths
}
