// Package file reads a source from a JSON or CSV snapshot on disk: an HR
// export, a demo organisation, a test fixture.
//
// Every fetch reads the whole file and returns a full result; the cursor is
// the file's SHA-256, so a caller can tell that nothing changed. Records that
// cannot be mapped are skipped and reported as Problems with their position
// ("users[3]", "groups[2]", "line 17"); a file that cannot be read as a whole
// (bad JSON syntax, a truncated file, an unknown CSV column) fails the fetch
// and nothing of it is returned.
//
// Duplicate emails inside one file are kept: matching people on email is the
// reconciler's rule, not the connector's.
package file

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/learnsync/learnsync/connectors"
)

// Formats a file source can read.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
)

// Config is the `config` block of a `file` source.
type Config struct {
	// Path is the file to read, relative to the configuration file's
	// directory unless absolute.
	Path string `yaml:"path"`
	// Format is json or csv; empty means "from the file's extension".
	Format string `yaml:"format"`
}

// DefaultConfig returns a Config with its defaults (no path, format from the
// extension).
func DefaultConfig() *Config { return &Config{} }

// Validate checks the block; paths in the errors are relative to it.
func (c *Config) Validate(opts connectors.Options) []error {
	var errs []error
	if strings.TrimSpace(c.Path) == "" {
		errs = append(errs, connectors.Errorf("path", "required"))
	} else if msg := checkReadable(connectors.ResolvePath(opts.BaseDir, c.Path)); msg != "" {
		errs = append(errs, connectors.Errorf("path", "%s", msg))
	}
	if _, err := c.format(); err != nil {
		if c.Format != "" || strings.TrimSpace(c.Path) != "" {
			errs = append(errs, err)
		}
	}
	return errs
}

// format returns the configured format or the one the extension implies.
func (c *Config) format() (string, error) {
	if c.Format != "" {
		switch f := strings.ToLower(c.Format); f {
		case FormatJSON, FormatCSV:
			return f, nil
		}
		return "", connectors.Errorf("format", "must be json or csv")
	}
	switch strings.ToLower(filepath.Ext(c.Path)) {
	case ".json":
		return FormatJSON, nil
	case ".csv":
		return FormatCSV, nil
	}
	return "", connectors.Errorf("format", "cannot infer the format from %q: set format to json or csv", filepath.Base(c.Path))
}

// checkReadable returns why the file at p cannot be read, or "".
func checkReadable(p string) string {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "file not found"
	}
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return "permission denied"
		}
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	if st.IsDir() {
		return "is a directory, not a file"
	}
	return ""
}

// Type registers the file source.
var Type = connectors.TypeOf(DefaultConfig, New)

// Connector reads one file. It is safe to call FetchAll again: each call
// reads the file afresh.
type Connector struct {
	path   string
	format string
	opts   connectors.Options
}

var (
	_ connectors.Incremental = (*Connector)(nil)
	_ connectors.Snapshot    = (*Connector)(nil)
)

// ReadsWhole reports that every fetch of a file reads all of it.
func (c *Connector) ReadsWhole() bool { return true }

// New returns a connector for cfg. The file itself is not opened until the
// first fetch, so it may appear later.
func New(cfg *Config, opts connectors.Options) (*Connector, error) {
	if strings.TrimSpace(cfg.Path) == "" {
		return nil, connectors.Errorf("path", "required")
	}
	format, err := cfg.format()
	if err != nil {
		return nil, err
	}
	return &Connector{path: connectors.ResolvePath(opts.BaseDir, cfg.Path), format: format, opts: opts}, nil
}

// Path returns the file the connector reads, resolved against BaseDir.
func (c *Connector) Path() string { return c.path }

// FetchAll reads the whole file. The result is always full and its cursor is
// the hex SHA-256 of the file's bytes.
func (c *Connector) FetchAll(ctx context.Context) (*connectors.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	connectors.ReadingWhole(ctx)
	f, err := os.Open(c.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read %s: file not found: %w", c.path, err)
		}
		return nil, fmt.Errorf("read %s: %w", c.path, err)
	}
	defer f.Close()

	// The hash sees every byte, BOM included, as the parser pulls them.
	h := sha256.New()
	tee := io.TeeReader(f, h)
	br := bufio.NewReaderSize(tee, 64<<10)
	bom, err := skipBOM(br)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", c.path, err)
	}

	s := newSnapshot(c.format)
	s.attrs = c.opts.Attrs
	switch c.format {
	case FormatJSON:
		err = s.readJSON(ctx, br, c.opts.Hooks)
	default:
		err = s.readCSV(ctx, br, c.opts.Hooks)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", c.path, c.locate(err, bom))
	}
	// The parsers stop at the end of the data; hash whatever they left.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, fmt.Errorf("read %s: %w", c.path, err)
	}

	res := s.result()
	res.Cursor = makeCursor(hex.EncodeToString(h.Sum(nil)), res.Problems)
	if log := c.opts.Logger; log != nil {
		if len(res.Users) == 0 {
			log.Warn("source file has no users", "path", c.path)
		}
		log.Debug("read source file", "path", c.path, "format", c.format,
			"users", len(res.Users), "groups", len(res.Groups), "problems", len(res.Problems))
	}
	return res, nil
}

// maxCursorProblems bounds the skipped records a cursor remembers.
const maxCursorProblems = 1000

// makeCursor returns the cursor of a file: its hash and, after a newline, the
// records it skipped, so that a run that finds the file unchanged reports
// them again without reading the file.
func makeCursor(hash string, problems []connectors.Problem) string {
	if len(problems) == 0 {
		return hash
	}
	b, err := json.Marshal(problems[:min(len(problems), maxCursorProblems)])
	if err != nil {
		return hash
	}
	return hash + "\n" + string(b)
}

// FetchChanges hashes the file and, when it is the one the cursor describes,
// returns an empty delta without parsing it. Otherwise it reads the whole file
// (a full result). A file export has no finer notion of change.
func (c *Connector) FetchChanges(ctx context.Context, cursor string) (*connectors.Result, error) {
	hash, problemsJSON, _ := strings.Cut(cursor, "\n")
	f, err := os.Open(c.path)
	if err != nil {
		return c.FetchAll(ctx) // reports the error as a full fetch does
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil || hex.EncodeToString(h.Sum(nil)) != hash {
		return c.FetchAll(ctx)
	}
	res := &connectors.Result{Cursor: cursor}
	if problemsJSON != "" {
		if err := json.Unmarshal([]byte(problemsJSON), &res.Problems); err != nil {
			return c.FetchAll(ctx)
		}
	}
	return res, nil
}

var bomBytes = []byte{0xEF, 0xBB, 0xBF}

// skipBOM drops a UTF-8 byte order mark (Excel writes one) and reports
// whether there was one.
func skipBOM(br *bufio.Reader) (bool, error) {
	p, err := br.Peek(3)
	if err != nil && err != io.EOF {
		return false, err
	}
	if bytes.Equal(p, bomBytes) {
		_, _ = br.Discard(3)
		return true, nil
	}
	return false, nil
}

// posError is a fatal error at a byte offset of the data after the BOM; the
// offset becomes a line and column only when the error is reported.
type posError struct {
	offset int64
	// syntax asks to find the exact offset again by validating the file:
	// json.Decoder does not report absolute offsets for syntax errors.
	syntax bool
	err    error
}

func (e *posError) Error() string { return e.err.Error() }
func (e *posError) Unwrap() error { return e.err }

// locate turns a posError into an error that names a line and column.
func (c *Connector) locate(err error, bom bool) error {
	var pe *posError
	if !errors.As(err, &pe) {
		return err
	}
	data, rerr := os.ReadFile(c.path)
	if rerr != nil {
		return err
	}
	if bom {
		data = bytes.TrimPrefix(data, bomBytes)
	}
	off := pe.offset
	if pe.syntax {
		if se := syntaxOffset(data); se >= 0 {
			off = se
		}
	} else {
		// Offsets taken between values point before the separator; move to
		// the value itself so the line is the one a person would look at.
		for off < int64(len(data)) && strings.IndexByte(" \t\r\n,:", data[off]) >= 0 {
			off++
		}
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}
