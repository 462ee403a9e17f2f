// Package connectors holds the contract between learnsync and the identity
// sources it reads (Okta, Entra ID, OneLogin, files), the registry that maps a
// configured source type to its implementation, and the HTTP plumbing the
// connectors share (TLS roots, retries with backoff, rate budgets).
//
// The contract is small and read-only: a connector fetches, it never writes to
// the identity provider. Each implementation lives in its own package and
// depends on this package only.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Status says how the reconciler treats a user of a source.
type Status string

const (
	// StatusActive users get a profile, groups and licenses.
	StatusActive Status = "active"
	// StatusInactive users exist but must not have access (suspended,
	// deprovisioned, disabled). They keep an existing profile deactivated.
	StatusInactive Status = "inactive"
	// StatusSkip users are ignored as if they were not there (for example
	// Okta's STAGED users who were never activated).
	StatusSkip Status = "skip"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	return s == StatusActive || s == StatusInactive || s == StatusSkip
}

// User is one account of a source, mapped to learnsync's attributes.
type User struct {
	ExternalID     string
	UserName       string
	Email          string
	GivenName      string
	FamilyName     string
	DisplayName    string
	Title          string
	Department     string
	EmployeeNumber string
	Manager        string
	CostCenter     string
	Status         Status
	// Attrs is the JSON text of the raw attributes of the identity
	// provider's user object that the rules read (Options.Attrs), "" when
	// they read none.
	Attrs string
}

// Group is one group of a source.
type Group struct {
	ExternalID  string
	Name        string
	Description string
}

// Membership links a user to a group by their external ids.
type Membership struct {
	GroupID string
	UserID  string
}

// Problem is a record the connector skipped because it could not be mapped.
// The run goes on without it and the problem is kept in the run record.
type Problem struct {
	// Object names the record: "user 00u1", "line 17", "group 00g3".
	Object string
	// Reason says what was wrong with it.
	Reason string
}

func (p Problem) String() string { return p.Object + ": " + p.Reason }

// Result is what one fetch returns: either the whole state of the source
// (Full) or the changes since the cursor it was given.
//
// A full result is the complete truth: users, groups or members not in it are
// gone. A delta result only says what changed:
//   - Users and Groups are created or replaced;
//   - DeletedUsers and DeletedGroups (external ids) are gone;
//   - Members replaces the whole member list of each group it names;
//   - AddedMembers and RemovedMembers change single memberships.
//
// In a full result, Members holds the members of every group in Groups (a group
// with no entry has no members) and the Deleted* and *Members lists are empty.
//
// The result is handed over: the run keeps its lists as they are when they
// are sorted and without repeats (the file source sends them so), and the
// connector must not change them afterwards.
type Result struct {
	Full           bool
	Users          []User
	Groups         []Group
	Members        map[string][]string
	DeletedUsers   []string
	DeletedGroups  []string
	AddedMembers   []Membership
	RemovedMembers []Membership
	// Cursor is handed back to FetchChanges next time. It is stored only
	// together with the mirror this result produces.
	Cursor string
	// Problems lists records skipped as malformed.
	Problems []Problem
	// Requests counts the API requests the fetch made (0 for non-HTTP sources).
	Requests int
	// UserHashes and GroupHashes, when set, hold the UserHash of every user
	// and the GroupHash (with its Members) of every group of a full
	// result, in the order of Users and Groups: a source that reads whole
	// computes them as it reads, and the reconciler compares them with the
	// stored ones instead of hashing the records again.
	UserHashes, GroupHashes []int64
}

// Connector reads one source. A fetch completes or fails: it never returns a
// partial result together with a nil error.
type Connector interface {
	// FetchAll returns the complete state of the source and a cursor for the
	// next FetchChanges (empty if the source cannot fetch incrementally).
	FetchAll(ctx context.Context) (*Result, error)
}

// Incremental is a Connector that can fetch only what changed since a cursor.
type Incremental interface {
	Connector
	// FetchChanges returns the changes since cursor. When the cursor is no
	// longer valid it may return a full result instead (Result.Full).
	FetchChanges(ctx context.Context, cursor string) (*Result, error)
}

// Snapshot is a Connector whose every fetch reads the whole source (a file
// export): its full results are no sign that changes were missed, only that
// the source changed. The reconciler compares such a result with the stored
// mirror row by row and reconciles what differs, instead of everything.
type Snapshot interface {
	Connector
	// ReadsWhole reports that every fetch reads the whole source.
	ReadsWhole() bool
}

// Pushed is a Connector whose identity provider pushes its changes (SCIM)
// instead of being fetched: the push endpoint writes the source's mirror, a
// run never fetches the source, uses its mirror as it stands and never
// freezes it.
type Pushed interface {
	Connector
	// Pushed marks the type; it does nothing.
	Pushed()
}

// IsPushed reports whether c is a Pushed connector.
func IsPushed(c Connector) bool {
	_, ok := c.(Pushed)
	return ok
}

// ErrTerminal marks errors that retrying cannot fix: bad credentials, missing
// permissions, a source that does not exist. Wrap it with %w.
var ErrTerminal = errors.New("terminal")

// TerminalError returns an error for which errors.Is(err, ErrTerminal) holds.
// Its message is only the one given: the word "terminal" is for code, not
// for the admin reading the log.
func TerminalError(format string, args ...any) error {
	return &terminalError{err: fmt.Errorf(format, args...)}
}

type terminalError struct{ err error }

func (e *terminalError) Error() string        { return e.err.Error() }
func (e *terminalError) Unwrap() error        { return e.err }
func (e *terminalError) Is(target error) bool { return target == ErrTerminal }

// Hooks lets the caller observe a connector's traffic (metrics, progress
// logs). Every field is optional.
type Hooks struct {
	// Request is called after every HTTP answer (status 0 = network error).
	Request func(endpoint string, status int, took time.Duration)
	// Throttled is called when the connector waits for a rate budget.
	Throttled func(endpoint string, wait time.Duration)
	// Progress is called now and then during a long fetch.
	Progress func(p Progress)
}

// Progress describes how far a fetch has come.
type Progress struct {
	Pages  int
	Users  int
	Groups int
	Waits  int
}

// OnRequest calls h.Request if set.
func (h Hooks) OnRequest(endpoint string, status int, took time.Duration) {
	if h.Request != nil {
		h.Request(endpoint, status, took)
	}
}

// OnThrottled calls h.Throttled if set.
func (h Hooks) OnThrottled(endpoint string, wait time.Duration) {
	if h.Throttled != nil {
		h.Throttled(endpoint, wait)
	}
}

// OnProgress calls h.Progress if set.
func (h Hooks) OnProgress(p Progress) {
	if h.Progress != nil {
		h.Progress(p)
	}
}

// Options are what every connector gets from learnsync besides its own config.
type Options struct {
	// Name is the source's configured name, for errors and logs.
	Name string
	// BaseDir is the directory of the config file; relative paths in a
	// connector's config are relative to it.
	BaseDir string
	// Logger is scoped to the source already. Never nil.
	Logger *slog.Logger
	// Hooks observes traffic.
	Hooks Hooks
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Attrs names the raw attributes the rules read: the connector keeps
	// them in User.Attrs (Selection.Keep). Nil keeps none.
	Attrs *Selection
}

// Clock returns o.Now or time.Now.
func (o Options) Clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// Config is a connector's own configuration block. The registry decodes the
// block of a source into the value returned by Type.NewConfig, strictly
// (unknown keys are errors), then calls Validate.
type Config interface {
	// Validate returns every problem at once. Paths in FieldErrors are
	// relative to the connector's block ("path", "scopes[1]").
	Validate(opts Options) []error
}

// Type is one kind of source.
type Type struct {
	// NewConfig returns a config with its defaults filled in.
	NewConfig func() Config
	// New builds a connector from a validated config.
	New func(cfg Config, opts Options) (Connector, error)
}

// TypeOf makes the Type of a connector package from its config constructor
// and its New. The registry hands New the config that NewConfig made, so
// the assertion back to *C cannot fail in practice; and a failed New gives
// a nil Connector, never a typed nil that compares unequal to nil.
func TypeOf[C any, PC interface {
	*C
	Config
}, K any, PK interface {
	*K
	Connector
}](newConfig func() PC, build func(PC, Options) (PK, error)) Type {
	return Type{
		NewConfig: func() Config { return newConfig() },
		New: func(cfg Config, opts Options) (Connector, error) {
			c, ok := cfg.(PC)
			if !ok || c == nil {
				return nil, fmt.Errorf("source %q: config is %T, want %T", opts.Name, cfg, c)
			}
			conn, err := build(c, opts)
			if err != nil {
				return nil, err
			}
			if conn == nil {
				return nil, fmt.Errorf("source %q: no connector", opts.Name)
			}
			return conn, nil
		},
	}
}

// Registry maps a source `type` from the configuration to its implementation.
type Registry map[string]Type

// FieldError is a problem with one configuration field.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errorf returns a FieldError for path.
func Errorf(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}
