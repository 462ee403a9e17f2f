package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/file"
)

// fakeConfig is the config block of the "fake" test connector. It has a
// field of every kind connectors use, so the strict decoder is exercised on
// connector blocks as well as on learnsync's own keys.
type fakeConfig struct {
	Path    string            `yaml:"path"`
	Token   connectors.Secret `yaml:"token"`
	Timeout time.Duration     `yaml:"timeout"`
	Scopes  []string          `yaml:"scopes"`
	Share   float64           `yaml:"share"`
	Pages   int               `yaml:"pages"`
	Strict  bool              `yaml:"strict"`

	// opts records what Validate was called with.
	opts *connectors.Options
}

func (c *fakeConfig) Validate(opts connectors.Options) []error {
	c.opts = &opts
	var errs []error
	if c.Path == "" {
		errs = append(errs, connectors.Errorf("path", "required"))
	} else if _, err := os.Stat(connectors.ResolvePath(opts.BaseDir, c.Path)); err != nil {
		errs = append(errs, connectors.Errorf("path", "file not found"))
	}
	if strings.ContainsAny(c.Token.Reveal(), " \t") {
		errs = append(errs, connectors.Errorf("token", "must not contain spaces"))
	}
	if c.Timeout < 0 {
		errs = append(errs, connectors.Errorf("timeout", "must not be negative"))
	}
	for i, s := range c.Scopes {
		if s == "" {
			errs = append(errs, connectors.Errorf(fmt.Sprintf("scopes[%d]", i), "must not be empty"))
		}
	}
	return errs
}

// plainConfig reports problems that are not FieldErrors.
type plainConfig struct {
	Fail bool `yaml:"fail"`
}

func (c *plainConfig) Validate(connectors.Options) []error {
	if c.Fail {
		return []error{errors.New("the plain source refuses")}
	}
	return nil
}

func newFake(connectors.Config, connectors.Options) (connectors.Connector, error) {
	return nil, errors.New("not used in config tests")
}

func testRegistry() connectors.Registry {
	return connectors.Registry{
		"fake": {
			NewConfig: func() connectors.Config { return &fakeConfig{Timeout: 30 * time.Second, Scopes: []string{"read"}} },
			New:       newFake,
		},
		"plain": {
			NewConfig: func() connectors.Config { return &plainConfig{} },
			New:       newFake,
		},
		"file": file.Type,
	}
}

// env is a lookup function over a fixed environment.
func env(vars ...string) func(string) (string, bool) {
	m := make(map[string]string)
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// writeFile writes content to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testDir returns a temporary directory holding org.json, which the sources
// of the tests point at.
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "org.json", `{"users":[],"groups":[]}`)
	return dir
}

// minimal is the smallest valid configuration.
const minimal = `
directory:
  dsn: learnsync.db
sources:
  - name: hr
    type: fake
    config:
      path: org.json
`

// parse parses doc against a directory holding org.json.
func parse(t *testing.T, doc string, lookup func(string) (string, bool)) (*config.Config, error) {
	t.Helper()
	if lookup == nil {
		lookup = env()
	}
	return config.Parse([]byte(doc), testDir(t), testRegistry(), lookup)
}

func mustParse(t *testing.T, doc string, lookup func(string) (string, bool)) *config.Config {
	t.Helper()
	cfg, err := parse(t, doc, lookup)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// problems returns the messages of the config.Errors inside err, failing
// the test when err is nil or not such an error.
func problems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want problems")
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("error does not wrap ErrInvalid: %v", err)
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is not config.Errors: %v", err)
	}
	var msgs []string
	for _, e := range errs {
		var fe *connectors.FieldError
		if !errors.As(e, &fe) {
			t.Errorf("problem %q is not a *connectors.FieldError", e)
		}
		msgs = append(msgs, e.Error())
	}
	return msgs
}

// wantProblems checks that the problems in err are exactly the wanted ones,
// in any order; each wanted string is a prefix of its problem's message.
func wantProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	got := problems(t, err)
	left := slices.Clone(got)
	var missing []string
	for _, w := range want {
		i := slices.IndexFunc(left, func(g string) bool { return strings.HasPrefix(g, w) })
		if i < 0 {
			missing = append(missing, w)
			continue
		}
		left = slices.Delete(left, i, i+1)
	}
	if len(missing) > 0 || len(left) > 0 {
		t.Errorf("problems:\n  %s\nmissing:\n  %s\nunexpected:\n  %s",
			strings.Join(got, "\n  "), strings.Join(missing, "\n  "), strings.Join(left, "\n  "))
	}
}

// wantProblem checks that err holds a problem starting with want (others may
// be there too).
func wantProblem(t *testing.T, err error, want string) {
	t.Helper()
	got := problems(t, err)
	if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, want) }) {
		t.Errorf("problems:\n  %s\nwant one starting with %q", strings.Join(got, "\n  "), want)
	}
}

// The example from the issue (the configuration contract), verbatim apart
// from the file the source reads.
const issueExample = `
directory:
  driver: sqlite                  # sqlite (default); postgres comes later
  dsn: learnsync.db
identity:
  match_on: email                 # email (trimmed, case-insensitive) | user_name
sources:                          # earlier sources win when attributes disagree
  - name: hr                      # [a-z0-9-]+, unique; prefixes group names: "hr/Engineering"
    type: file                    # file | okta | entra | onelogin (the others come in their issues)
    schedule: "@every 5m"         # incremental fetch: cron spec or @every (used by service mode)
    full_sync: "0 3 * * *"        # full fetch, catches what deltas miss
    scope:
      groups: ["Learning Users"]  # optional: only members of these groups of this source
    sync_groups: ["*"]            # glob patterns: which of this source's groups to mirror
    config:                       # the connector's own block, validated by the connector
      path: examples/org.json
licenses:
  - name: learning-pro
    seats: 250                    # 0 = unlimited
    groups: ["hr/Engineering"]    # "source/group" or a bare group name (any source)
  - name: learning-basic
    all_active: true
deprovision:
  delete_after: 0s                # deactivated people are deleted after this; 0 = never
safety:
  max_deactivations: 50           # a run that would deactivate more is blocked
  max_deactivation_percent: 20    # ... or more than this share of active people
server:
  listen: 127.0.0.1:9750          # service mode (a later issue)
`

func TestIssueExample(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "examples/org.json", `{"users":[],"groups":[]}`)
	path := writeFile(t, dir, "learnsync.yaml", issueExample)

	cfg, err := config.Load(path, testRegistry(), env())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &config.Config{
		Directory: config.Directory{Driver: "sqlite", DSN: "learnsync.db"},
		Identity:  config.Identity{MatchOn: config.MatchEmail},
		Sources: []config.Source{{
			Name:       "hr",
			Type:       "file",
			Schedule:   config.MustParseSchedule("@every 5m"),
			FullSync:   config.MustParseSchedule("0 3 * * *"),
			Scope:      config.Scope{Groups: []string{"Learning Users"}},
			SyncGroups: []string{"*"},
			StaleAfter: time.Hour,
			Connector:  &file.Config{Path: "examples/org.json"},
		}},
		Licenses: []config.License{
			{Name: "learning-pro", Seats: 250, Groups: []string{"hr/Engineering"}},
			{Name: "learning-basic", AllActive: true},
		},
		Safety:    config.Safety{MaxDeactivations: 50, MaxDeactivationPercent: 20},
		Reconcile: config.Reconcile{FullEvery: 24 * time.Hour},
		Server:    config.Server{Listen: "127.0.0.1:9750", ShutdownTimeout: 30 * time.Second},
		History:   config.History{KeepRuns: 1000},
		Path:      path,
		BaseDir:   dir,
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(config.Source{}, "Raw")); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if got, want := cfg.DatabasePath(), filepath.Join(dir, "learnsync.db"); got != want {
		t.Errorf("DatabasePath = %q, want %q", got, want)
	}
}

// The bundled example must keep loading: the README's first command runs it.
func TestBundledExample(t *testing.T) {
	path := filepath.Join("..", "config.example.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no bundled example: %v", err)
	}
	cfg, err := config.Load(path, testRegistry(), env())
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if len(cfg.Sources) == 0 || cfg.Sources[0].Connector == nil {
		t.Errorf("bundled example has no decoded source: %+v", cfg.Sources)
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, minimal, nil)
	want := &config.Config{
		Directory: config.Directory{Driver: "sqlite", DSN: "learnsync.db"},
		Identity:  config.Identity{MatchOn: "email"},
		Sources: []config.Source{{
			Name:       "hr",
			Type:       "fake",
			Schedule:   config.MustParseSchedule("@every 5m"),
			FullSync:   config.MustParseSchedule("0 3 * * *"),
			SyncGroups: []string{"*"},
			StaleAfter: time.Hour,
		}},
		Deprovision: config.Deprovision{DeleteAfter: 0},
		Safety:      config.Safety{MaxDeactivations: 50, MaxDeactivationPercent: 20},
		Reconcile:   config.Reconcile{FullEvery: 24 * time.Hour},
		Server:      config.Server{Listen: "127.0.0.1:9750", ShutdownTimeout: 30 * time.Second},
		History:     config.History{KeepRuns: 1000},
		BaseDir:     cfg.BaseDir,
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(config.Source{}, "Raw", "Connector")); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cfg.Licenses != nil {
		t.Errorf("Licenses = %v, want none", cfg.Licenses)
	}
	if cfg.Sources[0].Scope.Groups != nil {
		t.Errorf("Scope.Groups = %v, want none", cfg.Sources[0].Scope.Groups)
	}
	// The connector's own defaults survive when its keys are omitted.
	fc, ok := cfg.Sources[0].Connector.(*fakeConfig)
	if !ok {
		t.Fatalf("Connector is %T, want *fakeConfig", cfg.Sources[0].Connector)
	}
	if fc.Timeout != 30*time.Second || !slices.Equal(fc.Scopes, []string{"read"}) {
		t.Errorf("connector defaults lost: timeout %v, scopes %v", fc.Timeout, fc.Scopes)
	}

	if d := config.Default(); d.Directory.Driver != "sqlite" || d.Directory.DSN != "learnsync.db" ||
		d.Server.Listen != config.DefaultListen || d.History.KeepRuns != 1000 {
		t.Errorf("Default() = %+v", d)
	}
}

// Keys given with nothing after them ("key:" or "key: ~") keep their default.
func TestNullKeepsDefault(t *testing.T) {
	cfg := mustParse(t, minimal+`
    schedule:
    full_sync: ~
    sync_groups:
identity:
  match_on:
safety:
server: ~
`, nil)
	s := cfg.Sources[0]
	if s.Schedule.String() != config.DefaultSchedule || s.FullSync.String() != config.DefaultFullSync || !slices.Equal(s.SyncGroups, []string{"*"}) {
		t.Errorf("source defaults lost: %+v", s)
	}
	if cfg.Identity.MatchOn != "email" || cfg.Safety.MaxDeactivations != 50 || cfg.Server.Listen != config.DefaultListen {
		t.Errorf("defaults lost: %+v", cfg)
	}
}

// Every source gets the defaults, whether or not another source overrode
// them.
func TestSourceDefaultsPerSource(t *testing.T) {
	cfg := mustParse(t, `
directory: {dsn: x.db}
sources:
  - name: a
    type: fake
    schedule: "@hourly"
    full_sync: "@every 24h"
    sync_groups: ["Eng*", "Sales"]
    scope: {groups: [Staff]}
    config: {path: org.json}
  - name: b
    type: fake
    config: {path: org.json}
`, nil)
	a, b := cfg.Sources[0], cfg.Sources[1]
	if a.Schedule.String() != "@hourly" || a.FullSync.String() != "@every 24h" || !slices.Equal(a.SyncGroups, []string{"Eng*", "Sales"}) ||
		!slices.Equal(a.Scope.Groups, []string{"Staff"}) {
		t.Errorf("sources[0] = %+v", a)
	}
	if b.Schedule.String() != config.DefaultSchedule || b.FullSync.String() != config.DefaultFullSync || !slices.Equal(b.SyncGroups, []string{"*"}) ||
		b.Scope.Groups != nil {
		t.Errorf("sources[1] = %+v", b)
	}
	if got := cfg.SourceIndex("b"); got != 1 {
		t.Errorf("SourceIndex(b) = %d, want 1", got)
	}
	if got := cfg.SourceIndex("nope"); got != -1 {
		t.Errorf("SourceIndex(nope) = %d, want -1", got)
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "org.json", `{"users":[],"groups":[]}`)
	path := writeFile(t, dir, "learnsync.yaml", `
directory:
  driver: sqlite
  dsn: learnsync.db
identity:
  match_on: employee_id
colour: blue
sources:
  - name: hr
    type: fake
    schedule: "every five minutes"
    config:
      path: org.json
      tokn: abc
  - name: hr
    type: file
    flavour: vanilla
    config:
      path: missing.json
  - name: Bad_Name
    type: ldap
    config: {}
  - name: ok
    type: fake
    full_sync: "0 3 * *"
    config:
      path: org.json
      timeout: soon
licenses:
  - name: pro
    seats: -1
    groups: [hr/Engineering]
  - name: basic
  - name: many
    seats: many
    all_active: true
deprovision:
  delete_after: 3 days
`)
	_, err := config.Load(path, testRegistry(), env())
	wantProblems(t, err,
		"colour: unknown key",
		`identity.match_on: must be email or user_name, got "employee_id"`,
		`sources[0].schedule: "every five minutes" is not a cron spec or @every interval`,
		"sources[0].config.tokn: unknown key",
		"sources[1].flavour: unknown key",
		`sources[1].name: "hr" is already the name of sources[0]`,
		"sources[1].config.path: file not found",
		`sources[2].name: "Bad_Name" must be lowercase letters, digits and dashes`,
		`sources[2].type: unknown source type "ldap" (known: fake, file, plain)`,
		`sources[3].full_sync: "0 3 * *" is not a cron spec or @every interval`,
		`sources[3].config.timeout: must be a duration like 30s, 5m or 72h, got "soon"`,
		"licenses[0].seats: must be 0 (unlimited) or more",
		"licenses[1]: needs groups or all_active: true",
		`licenses[2].seats: must be a whole number, got "many"`,
		`deprovision.delete_after: must be a duration like 30s, 5m or 72h, got "3 days"`,
	)
	// The whole error reads as one problem per line.
	msg := err.Error()
	if !strings.HasPrefix(msg, "invalid configuration: ") || strings.Count(msg, "\n") != 14 {
		t.Errorf("Error() =\n%s", msg)
	}
}

func TestProblems(t *testing.T) {
	src := func(extra string) string {
		return "directory: {dsn: x.db}\nsources:\n  - name: hr\n    type: fake\n    config: {path: org.json}\n" + extra
	}
	const srcOnly = "sources:\n  - {name: hr, type: fake, config: {path: org.json}}\n"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		// Top level.
		{"unknown top-level key", src("sourcez: []\n"), []string{"sourcez: unknown key"}},
		{"top-level key given twice", src("identity: {match_on: email}\nidentity: {match_on: user_name}\n"), []string{"identity: given twice"}},
		{"sources given twice", src("sources: []\n"), []string{"sources: given twice"}},
		{"no sources key", "directory: {dsn: x.db}\n", []string{"sources: at least one source is required"}},
		{"empty sources", "directory: {dsn: x.db}\nsources: []\n", []string{"sources: at least one source is required"}},
		{"null sources", "directory: {dsn: x.db}\nsources:\n", []string{"sources: at least one source is required"}},
		{"sources not a list", "directory: {dsn: x.db}\nsources: {name: hr}\n",
			[]string{"sources: must be a list, got a mapping", "sources: at least one source is required"}},
		{"section not a mapping", src("safety: 50\n"), []string{"safety: must be a mapping, got a value"}},
		{"section is a list", src("server: [a]\n"), []string{"server: must be a mapping, got a list"}},

		// directory.
		{"unknown driver", "directory: {driver: mysql, dsn: x}\n" + srcOnly, []string{`directory.driver: unknown driver "mysql" (supported: sqlite, postgres)`}},
		{"postgres dsn is checked, not echoed", "directory: {driver: postgres, dsn: 'postgres://u:hunter2@h:notaport/db'}\n" + srcOnly,
			[]string{"directory.dsn: not a PostgreSQL connection string (postgres://user@host:5432/db?sslmode=verify-full, or key=value pairs)"}},
		{"postgres dsn under sqlite", "directory: {driver: sqlite, dsn: 'postgres://h/db'}\n" + srcOnly,
			[]string{"directory.dsn: is a PostgreSQL connection string: set directory.driver: postgres"}},
		{"max_conns is for postgres", "directory: {dsn: x.db, max_conns: 4}\n" + srcOnly,
			[]string{"directory.max_conns: applies to driver postgres only"}},
		{"empty driver", `directory: {driver: "", dsn: x}` + "\n" + srcOnly, []string{"directory.driver: required"}},
		{"blank dsn", `directory: {dsn: "  "}` + "\n" + srcOnly, []string{"directory.dsn: required"}},
		{"unknown directory key", "directory: {dsn: x, path: y}\n" + srcOnly, []string{"directory.path: unknown key"}},

		// identity.
		{"bad match_on", src("identity: {match_on: Email}\n"), []string{`identity.match_on: must be email or user_name, got "Email"`}},
		{"user_name match", src("identity: {match_on: user_name}\n"), nil},

		// sources.
		{"source missing name and type", "directory: {dsn: x}\nsources:\n  - config: {path: org.json}\n",
			[]string{"sources[0].name: required", "sources[0].type: required"}},
		{"source missing config", "directory: {dsn: x}\nsources:\n  - {name: hr, type: fake}\n", []string{"sources[0].config: required"}},
		{"source config not a mapping", "directory: {dsn: x}\nsources:\n  - {name: hr, type: fake, config: [path]}\n",
			[]string{"sources[0].config: must be a mapping, got a list"}},
		{"source config null", "directory: {dsn: x}\nsources:\n  - {name: hr, type: fake, config: }\n",
			[]string{"sources[0].config.path: required"}},
		{"source is a value", "directory: {dsn: x}\nsources:\n  - hr\n",
			[]string{"sources[0]: must be a mapping, got a value", "sources[0].name: required", "sources[0].type: required"}},
		{"source is null", "directory: {dsn: x}\nsources:\n  -\n", []string{"sources[0].name: required", "sources[0].type: required"}},
		{"source name with space", "directory: {dsn: x}\nsources:\n  - {name: h r, type: fake, config: {path: org.json}}\n",
			[]string{`sources[0].name: "h r" must be lowercase`}},
		{"source name with underscore", "directory: {dsn: x}\nsources:\n  - {name: h_r, type: fake, config: {path: org.json}}\n",
			[]string{`sources[0].name: "h_r" must be lowercase`}},
		{"source name with slash", "directory: {dsn: x}\nsources:\n  - {name: h/r, type: fake, config: {path: org.json}}\n",
			[]string{`sources[0].name: "h/r" must be lowercase`}},
		{"source name with digits and dashes", "directory: {dsn: x}\nsources:\n  - {name: hr-2, type: fake, config: {path: org.json}}\n", nil},
		{"source key given twice", "directory: {dsn: x}\nsources:\n  - {name: hr, name: it, type: fake, config: {path: org.json}}\n",
			[]string{"sources[0].name: given twice"}},
		{"cron descriptor", src("    schedule: \"@daily\"\n    full_sync: \"*/15 2-4 * * mon-fri\"\n"), nil},
		{"six-field cron", src("    schedule: \"0 0 3 * * *\"\n"), []string{`sources[0].schedule: "0 0 3 * * *" is not a cron spec`}},
		{"bad @every", src("    schedule: \"@every soon\"\n"), []string{`sources[0].schedule: "@every soon" is not a cron spec`}},
		{"empty schedule", src("    schedule: \"\"\n"), []string{`sources[0].schedule: "" is not a cron spec`}},
		{"bad glob", src("    sync_groups: [\"Eng*\", \"[\"]\n"), []string{`sources[0].sync_groups[1]: "[" is not a valid glob pattern`}},
		{"empty glob", src("    sync_groups: [\"\"]\n"), []string{`sources[0].sync_groups[0]: "" is not a valid glob pattern`}},
		{"sync_groups not a list", src("    sync_groups: \"*\"\n"), []string{"sources[0].sync_groups: must be a list, got a value"}},
		{"empty scope group", src("    scope: {groups: [Staff, \" \"]}\n"), []string{"sources[0].scope.groups[1]: must not be empty"}},
		{"unknown scope key", src("    scope: {users: [a]}\n"), []string{"sources[0].scope.users: unknown key"}},
		{"list item of wrong kind", src("    scope: {groups: [[a]]}\n"),
			[]string{"sources[0].scope.groups[0]: must be a single value, got a list", "sources[0].scope.groups[0]: must not be empty"}},

		// Connector blocks.
		{"connector field errors", "directory: {dsn: x}\nsources:\n  - name: hr\n    type: fake\n    config:\n      path: nope.json\n      timeout: -1s\n      scopes: [a, \"\"]\n",
			[]string{"sources[0].config.path: file not found", "sources[0].config.timeout: must not be negative", "sources[0].config.scopes[1]: must not be empty"}},
		{"connector error without a path", "directory: {dsn: x}\nsources:\n  - {name: p, type: plain, config: {fail: true}}\n",
			[]string{"sources[0].config: the plain source refuses"}},
		{"connector wrong types", "directory: {dsn: x}\nsources:\n  - name: hr\n    type: fake\n    config: {path: org.json, pages: ten, share: half, strict: maybe, scopes: read}\n",
			[]string{`sources[0].config.pages: must be a whole number, got "ten"`, `sources[0].config.share: must be a number, got "half"`,
				`sources[0].config.strict: must be true or false, got "maybe"`, "sources[0].config.scopes: must be a list, got a value"}},
		{"unknown type lists known ones", "directory: {dsn: x}\nsources:\n  - {name: hr, type: okta, config: {}}\n",
			[]string{`sources[0].type: unknown source type "okta" (known: fake, file, plain)`}},
		{"file connector", "directory: {dsn: x}\nsources:\n  - {name: hr, type: file, config: {path: org.json, format: xml}}\n",
			[]string{"sources[0].config.format: must be json or csv"}},

		// licenses.
		{"license without name", src("licenses:\n  - {all_active: true}\n"), []string{"licenses[0].name: required"}},
		{"duplicate license", src("licenses:\n  - {name: pro, all_active: true}\n  - {name: pro, groups: [a]}\n"),
			[]string{`licenses[1].name: "pro" is already the name of licenses[0]`}},
		{"license with both", src("licenses:\n  - {name: pro, all_active: true, groups: [a]}\n"), []string{"licenses[0]: all_active and groups exclude each other"}},
		{"license with neither", src("licenses:\n  - {name: pro, seats: 5}\n"), []string{"licenses[0]: needs groups or all_active: true"}},
		{"license with all_active false", src("licenses:\n  - {name: pro, all_active: false}\n"), []string{"licenses[0]: needs groups or all_active: true"}},
		{"license empty group", src("licenses:\n  - {name: pro, groups: [\"hr/Eng\", \"\"]}\n"), []string{"licenses[0].groups[1]: must not be empty"}},
		{"negative seats", src("licenses:\n  - {name: pro, seats: -3, all_active: true}\n"), []string{"licenses[0].seats: must be 0 (unlimited) or more"}},
		{"seats many", src("licenses:\n  - {name: pro, seats: many, all_active: true}\n"), []string{`licenses[0].seats: must be a whole number, got "many"`}},
		{"seats fraction", src("licenses:\n  - {name: pro, seats: 2.5, all_active: true}\n"), []string{`licenses[0].seats: must be a whole number, got "2.5"`}},
		{"seats overflow", src("licenses:\n  - {name: pro, seats: 99999999999999999999, all_active: true}\n"), []string{"licenses[0].seats: must be a whole number"}},
		{"seats list", src("licenses:\n  - {name: pro, seats: [1], all_active: true}\n"), []string{"licenses[0].seats: must be a single value, got a list"}},
		{"all_active yes", src("licenses:\n  - {name: pro, seats: +5, all_active: yes}\n"), nil},
		{"all_active maybe", src("licenses:\n  - {name: pro, all_active: maybe}\n"),
			[]string{`licenses[0].all_active: must be true or false, got "maybe"`, "licenses[0]: needs groups or all_active: true"}},
		{"licenses not a list", src("licenses: {name: pro}\n"), []string{"licenses: must be a list, got a mapping"}},

		// deprovision, safety, history, server.
		{"delete_after days", src("deprovision: {delete_after: 30d}\n"), []string{`deprovision.delete_after: must be a duration like 30s, 5m or 72h, got "30d"`}},
		{"full_every negative", src("reconcile: {full_every: -1h}\n"), []string{`reconcile.full_every: must not be negative`}},
		{"full_every days", src("reconcile: {full_every: 1d}\n"), []string{`reconcile.full_every: must be a duration like 30s, 5m or 72h, got "1d"`}},
		{"delete_after without unit", src("deprovision: {delete_after: 5}\n"), []string{`deprovision.delete_after: must be a duration`}},
		{"delete_after negative", src("deprovision: {delete_after: -1h}\n"), []string{"deprovision.delete_after: must not be negative"}},
		{"delete_after zero", src("deprovision: {delete_after: 0}\n"), nil},
		{"negative max_deactivations", src("safety: {max_deactivations: -1}\n"), []string{"safety.max_deactivations: must be 0 (off) or more"}},
		{"percent over 100", src("safety: {max_deactivation_percent: 101}\n"), []string{"safety.max_deactivation_percent: must be between 0 (off) and 100"}},
		{"negative percent", src("safety: {max_deactivation_percent: -0.5}\n"), []string{"safety.max_deactivation_percent: must be between 0 (off) and 100"}},
		{"percent with junk", src("safety: {max_deactivation_percent: 20abc}\n"), []string{`safety.max_deactivation_percent: must be a number, got "20abc"`}},
		{"percent with sign", src("safety: {max_deactivation_percent: 20%}\n"), []string{`safety.max_deactivation_percent: must be a number, got "20%"`}},
		{"percent NaN", src("safety: {max_deactivation_percent: NaN}\n"), []string{`safety.max_deactivation_percent: must be a number, got "NaN"`}},
		{"percent .nan", src("safety: {max_deactivation_percent: .nan}\n"), []string{`safety.max_deactivation_percent: must be a number, got ".nan"`}},
		{"percent Inf", src("safety: {max_deactivation_percent: Inf}\n"), []string{`safety.max_deactivation_percent: must be a number, got "Inf"`}},
		{"percent two numbers", src("safety: {max_deactivation_percent: 20 30}\n"), []string{`safety.max_deactivation_percent: must be a number, got "20 30"`}},
		{"percent fraction", src("safety: {max_deactivation_percent: 12.5}\n"), nil},
		{"keep_runs zero", src("history: {keep_runs: 0}\n"), []string{"history.keep_runs: must be at least 1"}},
		{"listen without port", src("server: {listen: localhost}\n"), []string{`server.listen: "localhost" is not host:port`}},
		{"listen bad port", src("server: {listen: \"localhost:99999\"}\n"), []string{`server.listen: "localhost:99999": bad port`}},
		{"listen named port", src("server: {listen: \"localhost:http\"}\n"), []string{`server.listen: "localhost:http": bad port`}},
		{"listen any host", src("server: {listen: \":9750\"}\n"), []string{`server.listen: ":9750" is not a loopback address`}},
		{"listen any host allowed", src("server: {listen: \":9750\", allow_remote: true}\n"), nil},
		{"listen on a LAN address", src("server: {listen: \"10.0.0.5:9750\"}\n"),
			[]string{`server.listen: "10.0.0.5:9750" is not a loopback address; the ops endpoint has no authentication: set server.allow_remote: true`}},
		{"listen on a host name", src("server: {listen: \"ops.example.com:9750\"}\n"), []string{`server.listen: "ops.example.com:9750" is not a loopback address`}},
		{"listen on a LAN address allowed", src("server: {listen: \"10.0.0.5:9750\", allow_remote: true}\n"), nil},
		{"listen on localhost", src("server: {listen: \"localhost:0\"}\n"), nil},
		{"listen on IPv6 loopback", src("server: {listen: \"[::1]:9750\"}\n"), nil},
		{"listen on 127.0.0.2", src("server: {listen: \"127.0.0.2:9750\"}\n"), nil},
		{"allow_remote not a bool", src("server: {allow_remote: sure}\n"), []string{`server.allow_remote: must be true or false, got "sure"`}},
		{"shutdown_timeout zero", src("server: {shutdown_timeout: 0s}\n"), []string{"server.shutdown_timeout: must be more than 0"}},
		{"shutdown_timeout negative", src("server: {shutdown_timeout: -5s}\n"), []string{"server.shutdown_timeout: must be more than 0"}},
		{"shutdown_timeout set", src("server: {shutdown_timeout: 2m}\n"), nil},
		{"unknown server key", src("server: {port: 9750}\n"), []string{"server.port: unknown key"}},
		{"stale_after negative", src("    stale_after: -1h\n"), []string{"sources[0].stale_after: must be 0 (never) or more"}},
		{"stale_after zero", src("    stale_after: 0s\n"), nil},
		{"stale_after without unit", src("    stale_after: 60\n"), []string{"sources[0].stale_after: must be a duration"}},
		{"schedule_jitter negative", src("    schedule_jitter: -30s\n"), []string{"sources[0].schedule_jitter: must not be negative"}},
		{"schedule_jitter set", src("    schedule_jitter: 30s\n"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParse(t, tt.doc, tt.want)
		})
	}
}

// checkParse parses doc and checks that it is valid (want nil) or that it
// is refused, with no config, for exactly the problems in want.
func checkParse(t *testing.T, doc string, want []string) {
	t.Helper()
	cfg, err := parse(t, doc, nil)
	if want == nil {
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if cfg == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		return
	}
	if cfg != nil {
		t.Errorf("Parse returned a config with an error")
	}
	wantProblems(t, err, want...)
}

// A problem inside a connector block is reported once, and the connector is
// not asked to validate a block that did not decode.
func TestConnectorBlockDecodeErrorSkipsValidate(t *testing.T) {
	_, err := parse(t, "directory: {dsn: x}\nsources:\n  - {name: hr, type: fake, config: {path: nope.json, extra: 1}}\n", nil)
	wantProblems(t, err, "sources[0].config.extra: unknown key")
}

func TestConnectorGetsOptions(t *testing.T) {
	cfg := mustParse(t, `
directory: {dsn: x.db}
sources:
  - name: hr
    type: fake
    config:
      path: org.json
      token: abc
      timeout: 90s
      scopes: [a, b]
      share: 0.25
      pages: 7
      strict: on
`, nil)
	fc := cfg.Sources[0].Connector.(*fakeConfig)
	if fc.opts == nil {
		t.Fatal("Validate was not called")
	}
	if fc.opts.Name != "hr" || fc.opts.BaseDir != cfg.BaseDir {
		t.Errorf("Validate got options %+v, want name hr and base dir %s", *fc.opts, cfg.BaseDir)
	}
	if got := cfg.ConnectorOptions("hr"); got.Name != "hr" || got.BaseDir != cfg.BaseDir {
		t.Errorf("ConnectorOptions = %+v", got)
	}
	want := fakeConfig{Path: "org.json", Token: "abc", Timeout: 90 * time.Second, Scopes: []string{"a", "b"}, Share: 0.25, Pages: 7, Strict: true}
	if diff := cmp.Diff(want, *fc, cmpopts.IgnoreUnexported(fakeConfig{})); diff != "" {
		t.Errorf("connector config (-want +got):\n%s", diff)
	}
}

// YAML anchors and aliases work inside the document.
func TestAliases(t *testing.T) {
	cfg := mustParse(t, `
directory: {dsn: x.db}
sources:
  - name: hr
    type: fake
    sync_groups: &globs ["Eng*"]
    config: &block {path: org.json, scopes: [a]}
  - name: it
    type: fake
    sync_groups: *globs
    config: *block
licenses:
  - {name: pro, groups: &g [hr/Eng]}
  - {name: basic, groups: *g}
`, nil)
	for i, s := range cfg.Sources {
		fc := s.Connector.(*fakeConfig)
		if fc.Path != "org.json" || !slices.Equal(fc.Scopes, []string{"a"}) || !slices.Equal(s.SyncGroups, []string{"Eng*"}) {
			t.Errorf("sources[%d] = %+v, connector %+v", i, s, fc)
		}
		if s.Schedule.String() != config.DefaultSchedule {
			t.Errorf("sources[%d] lost its default schedule: %q", i, s.Schedule)
		}
	}
	if !slices.Equal(cfg.Licenses[1].Groups, []string{"hr/Eng"}) {
		t.Errorf("licenses[1].groups = %v", cfg.Licenses[1].Groups)
	}

	// An aliased source is the same source again: a duplicate name.
	_, err := parse(t, "directory: {dsn: x}\nsources:\n  - &hr {name: hr, type: fake, config: {path: org.json}}\n  - *hr\n", nil)
	wantProblems(t, err, `sources[1].name: "hr" is already the name of sources[0]`)
}

func TestMalformedYAML(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"unclosed quote", "directory:\n  dsn: \"x.db\nsources: []\n", "not valid YAML: "},
		{"tab indentation", "directory:\n\tdsn: x.db\n", "not valid YAML: line 2: found character that cannot start any token"},
		{"bad indentation", "directory:\n  dsn: x.db\n driver: sqlite\n", "not valid YAML: line "},
		{"mapping in scalar", "directory: dsn: x.db\n", "not valid YAML: "},
		{"unclosed flow", "sources: [\n", "not valid YAML: "},
		{"unknown alias", "directory: *nope\n", "not valid YAML: "},
		{"top-level list", "- a\n- b\n", "the configuration must be a mapping of keys, got a list"},
		{"top-level scalar", "hello\n", "the configuration must be a mapping of keys, got a value"},
		{"top-level null", "~\n", "the configuration must be a mapping of keys, got null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.doc, nil)
			got := problems(t, err)
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("problems = %q, want one starting with %q", got, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "invalid configuration: ") || strings.Contains(err.Error(), "yaml: ") {
				t.Errorf("Error() = %q", err)
			}
		})
	}
}

// A second YAML document would be silently ignored; it is an error.
func TestSeveralDocuments(t *testing.T) {
	_, err := parse(t, minimal+"---\nsafety: {max_deactivations: 0}\n", nil)
	wantProblems(t, err, "only one YAML document is allowed")

	_, err = parse(t, minimal+"---\nsafety: [\n", nil)
	wantProblems(t, err, "not valid YAML: ")

	// A document marker at the start, a trailing end marker or a bare
	// trailing "---" is fine.
	mustParse(t, "---\n"+minimal+"...\n", nil)
	mustParse(t, minimal+"---\n", nil)
	mustParse(t, minimal+"---\n# nothing here\n", nil)
	_, err = parse(t, minimal+"---\n---\nsafety: {max_deactivations: 0}\n", nil)
	wantProblems(t, err, "only one YAML document is allowed")
}

func TestEmpty(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":         "",
		"blank lines":   "\n\n   \n",
		"comments only": "# nothing configured yet\n# really\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, doc, nil)
			wantProblems(t, err, "the configuration is empty")
		})
	}
}

func TestLoad(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "learnsync.yaml")
		cfg, err := config.Load(path, testRegistry(), env())
		if cfg != nil || err == nil {
			t.Fatalf("Load = %v, %v; want an error", cfg, err)
		}
		if !errors.Is(err, config.ErrInvalid) {
			t.Errorf("error does not wrap ErrInvalid: %v", err)
		}
		if want := path + ": file not found"; !strings.Contains(err.Error(), want) {
			t.Errorf("Error() = %q, want it to contain %q", err, want)
		}
	})
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		_, err := config.Load(dir, testRegistry(), env())
		if err == nil || !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), dir+": ") {
			t.Errorf("Load(dir) = %v", err)
		}
	})
	t.Run("relative paths from the config's directory", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "conf/data/org.json", `{"users":[],"groups":[]}`)
		writeFile(t, dir, "conf/secrets/token", "s3cr3t\n")
		path := writeFile(t, dir, "conf/learnsync.yaml", `
directory: {dsn: state/learnsync.db}
sources:
  - name: hr
    type: fake
    config: {path: data/org.json, token_file: secrets/token}
`)
		cfg, err := config.Load(path, testRegistry(), env())
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if cfg.Path != path || cfg.BaseDir != filepath.Join(dir, "conf") {
			t.Errorf("Path, BaseDir = %q, %q", cfg.Path, cfg.BaseDir)
		}
		if got, want := cfg.DatabasePath(), filepath.Join(dir, "conf", "state", "learnsync.db"); got != want {
			t.Errorf("DatabasePath = %q, want %q", got, want)
		}
		if got := cfg.Sources[0].Connector.(*fakeConfig).Token.Reveal(); got != "s3cr3t" {
			t.Errorf("token = %q", got)
		}
	})
	t.Run("absolute dsn", func(t *testing.T) {
		dir := t.TempDir()
		db := filepath.Join(t.TempDir(), "abs.db")
		writeFile(t, dir, "org.json", "{}")
		path := writeFile(t, dir, "c.yaml", "directory: {dsn: "+db+"}\nsources:\n  - {name: hr, type: fake, config: {path: org.json}}\n")
		cfg, err := config.Load(path, testRegistry(), env())
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DatabasePath() != db {
			t.Errorf("DatabasePath = %q, want %q", cfg.DatabasePath(), db)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		dir := t.TempDir()
		path := writeFile(t, dir, "c.yaml", "colour: blue\n")
		cfg, err := config.Load(path, testRegistry(), env())
		if cfg != nil {
			t.Error("Load returned a config with an error")
		}
		wantProblems(t, err, "colour: unknown key", "directory: required (at least directory.dsn, the database file)",
			"sources: at least one source is required")
	})
	t.Run("directory without dsn", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "org.json", "{}")
		path := writeFile(t, dir, "c.yaml", "directory: {driver: sqlite}\nsources:\n  - {name: hr, type: fake, config: {path: org.json}}\n")
		_, err := config.Load(path, testRegistry(), env())
		wantProblems(t, err, "directory.dsn: required")
	})
}

func TestErrorsIsAs(t *testing.T) {
	_, err := parse(t, "colour: blue\ndirectory: {dsn: x}\nsources: []\n", nil)
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("errors.Is(err, ErrInvalid) = false for %v", err)
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("errors.As(err, *Errors) = false for %v", err)
	}
	if len(errs) != 2 {
		t.Fatalf("got %d problems, want 2: %v", len(errs), errs)
	}
	var fe *connectors.FieldError
	if !errors.As(err, &fe) || fe.Path != "colour" || fe.Msg != "unknown key" {
		t.Errorf("errors.As(err, *FieldError) = %+v", fe)
	}
	if got, want := errs.Error(), "colour: unknown key\nsources: at least one source is required"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	if got, want := err.Error(), "invalid configuration: "+errs.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := errs.Unwrap(); len(got) != 2 {
		t.Errorf("Unwrap() = %v", got)
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Run("set", func(t *testing.T) {
		cfg := mustParse(t, `
directory: {dsn: "${STATE}/learnsync.db"}
identity: {match_on: "${MATCH}"}
sources:
  - name: ${NAME}
    type: fake
    schedule: "@every ${EVERY}"
    config:
      path: ${ORG}
      token: ${TOKEN}
      timeout: ${TIMEOUT}
      scopes: ["${SCOPE}", "x-${SCOPE}-y"]
licenses:
  - {name: pro, seats: "${SEATS}", groups: ["${NAME}/Eng"]}
  - {name: all, all_active: "${ALL}"}
safety:
  max_deactivations: ${MAX}
  max_deactivation_percent: ${PCT}
server: {listen: "${HOST}:${PORT}", allow_remote: "${REMOTE}"}
`, env("STATE", "/var/lib/ls", "MATCH", "user_name", "NAME", "hr", "EVERY", "10m", "ORG", "org.json",
			"TOKEN", "tok-123", "TIMEOUT", "2m", "SCOPE", "s", "SEATS", "42", "ALL", "true", "MAX", "7", "PCT", "12.5",
			"HOST", "0.0.0.0", "PORT", "8080", "REMOTE", "true"))
		s := cfg.Sources[0]
		fc := s.Connector.(*fakeConfig)
		if cfg.Directory.DSN != "/var/lib/ls/learnsync.db" || cfg.Identity.MatchOn != "user_name" || s.Name != "hr" ||
			s.Schedule.String() != "@every 10m" || fc.Path != "org.json" || fc.Token.Reveal() != "tok-123" || fc.Timeout != 2*time.Minute ||
			!slices.Equal(fc.Scopes, []string{"s", "x-s-y"}) || cfg.Licenses[0].Seats != 42 || cfg.Licenses[0].Groups[0] != "hr/Eng" ||
			!cfg.Licenses[1].AllActive || cfg.Safety.MaxDeactivations != 7 || cfg.Safety.MaxDeactivationPercent != 12.5 ||
			cfg.Server.Listen != "0.0.0.0:8080" || !cfg.Server.AllowRemote {
			t.Errorf("expansion wrong: %+v\nsource %+v\nconnector %+v", cfg, s, fc)
		}
	})
	t.Run("set to empty", func(t *testing.T) {
		cfg := mustParse(t, minimal+"    scope: {groups: [\"a${EMPTY}\"]}\n", env("EMPTY", ""))
		if got := cfg.Sources[0].Scope.Groups[0]; got != "a" {
			t.Errorf("group = %q", got)
		}
	})
	t.Run("unset", func(t *testing.T) {
		_, err := parse(t, `
directory: {dsn: "${STATE_DIR}/learnsync.db"}
sources:
  - name: hr
    type: fake
    config:
      path: org.json
      token: ${OKTA_TOKEN}
      pages: ${PAGES}
licenses:
  - {name: pro, seats: "${SEATS}", all_active: true}
safety:
  max_deactivation_percent: ${PCT}
deprovision: {delete_after: "${KEEP}"}
server: {listen: "${A}:${B}"}
`, env("A", "localhost"))
		wantProblems(t, err,
			"directory.dsn: environment variable STATE_DIR is not set",
			"sources[0].config.token: environment variable OKTA_TOKEN is not set",
			"sources[0].config.pages: environment variable PAGES is not set",
			"licenses[0].seats: environment variable SEATS is not set",
			"safety.max_deactivation_percent: environment variable PCT is not set",
			"deprovision.delete_after: environment variable KEEP is not set",
			"server.listen: environment variable B is not set",
		)
	})
	t.Run("expanded to a bad value", func(t *testing.T) {
		_, err := parse(t, minimal+"licenses:\n  - name: pro\n    seats: ${SEATS}\n    all_active: true\n", env("SEATS", "-4"))
		wantProblems(t, err, "licenses[0].seats: must be 0 (unlimited) or more")
		_, err = parse(t, minimal+"licenses:\n  - name: pro\n    seats: ${SEATS}\n    all_active: true\n", env("SEATS", "many"))
		wantProblems(t, err, `licenses[0].seats: must be a whole number, got the value of "${SEATS}"`)
	})
	t.Run("bad references", func(t *testing.T) {
		for _, ref := range []string{"${}", "${1X}", "${A-B}", "${A ${B}", "${A.B}"} {
			_, err := parse(t, minimal+"      token: \""+ref+"\"\n", env("B", "b"))
			wantProblems(t, err, fmt.Sprintf("sources[0].config.token: %q is not a valid environment variable reference", ref))
		}
	})
	t.Run("several unset in one value", func(t *testing.T) {
		_, err := parse(t, minimal+"      token: \"${U1}:${U2}\"\n", nil)
		wantProblems(t, err,
			"sources[0].config.token: environment variable U1 is not set",
			"sources[0].config.token: environment variable U2 is not set")
	})
	t.Run("block style numbers and bools", func(t *testing.T) {
		cfg := mustParse(t, minimal+"      pages: ${N}\n      strict: ${B}\n      share: ${F}\n", env("N", "3", "B", "yes", "F", "0.5"))
		fc := cfg.Sources[0].Connector.(*fakeConfig)
		if fc.Pages != 3 || !fc.Strict || fc.Share != 0.5 {
			t.Errorf("connector = %+v", fc)
		}
	})
	t.Run("no braces, no expansion", func(t *testing.T) {
		cfg := mustParse(t, minimal+"    scope: {groups: [\"$HOME\", \"cost $5\"]}\n", nil)
		if got := cfg.Sources[0].Scope.Groups; !slices.Equal(got, []string{"$HOME", "cost $5"}) {
			t.Errorf("groups = %q", got)
		}
	})
	t.Run("values are not expanded twice", func(t *testing.T) {
		cfg := mustParse(t, minimal+"    scope: {groups: [\"${A}\"]}\n", env("A", "${B}", "B", "nested"))
		if got := cfg.Sources[0].Scope.Groups[0]; got != "${B}" {
			t.Errorf("group = %q, want the value of A as is", got)
		}
	})
	t.Run("nil lookup reads the environment", func(t *testing.T) {
		t.Setenv("LEARNSYNC_TEST_DSN", "from-env.db")
		dir := testDir(t)
		cfg, err := config.Parse([]byte(strings.Replace(minimal, "learnsync.db", "${LEARNSYNC_TEST_DSN}", 1)), dir, testRegistry(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Directory.DSN != "from-env.db" {
			t.Errorf("dsn = %q", cfg.Directory.DSN)
		}
	})
}

func TestSecretFile(t *testing.T) {
	doc := func(cfgBlock string) string {
		return "directory: {dsn: x.db}\nsources:\n  - name: hr\n    type: fake\n    config:\n      path: org.json\n" + cfgBlock
	}
	for name, content := range map[string]string{
		"plain":            "s3cr3t",
		"trailing newline": "s3cr3t\n",
		"crlf":             "s3cr3t\r\n",
		"several newlines": "s3cr3t\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := testDir(t)
			writeFile(t, dir, "token", content)
			cfg, err := config.Parse([]byte(doc("      token_file: token\n")), dir, testRegistry(), env())
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Sources[0].Connector.(*fakeConfig).Token.Reveal(); got != "s3cr3t" {
				t.Errorf("token = %q, want %q", got, "s3cr3t")
			}
		})
	}
	t.Run("inner whitespace kept", func(t *testing.T) {
		dir := testDir(t)
		writeFile(t, dir, "key.pem", "-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
		// The fake connector refuses whitespace in tokens, so the inner
		// newlines reaching it show they were kept.
		_, err := config.Parse([]byte(doc("      token_file: key.pem\n")), dir, testRegistry(), env())
		wantProblems(t, err, "sources[0].config.token: must not contain spaces")
	})
	t.Run("absolute path from the environment", func(t *testing.T) {
		dir := testDir(t)
		p := writeFile(t, t.TempDir(), "tok", "abc\n")
		cfg, err := config.Parse([]byte(doc("      token_file: ${TOKEN_FILE}\n")), dir, testRegistry(), env("TOKEN_FILE", p))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Sources[0].Connector.(*fakeConfig).Token.Reveal(); got != "abc" {
			t.Errorf("token = %q", got)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := parse(t, doc("      token_file: secrets/nope\n"), nil)
		wantProblems(t, err, "sources[0].config.token_file: file not found: secrets/nope")
	})
	t.Run("a directory", func(t *testing.T) {
		dir := testDir(t)
		if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := config.Parse([]byte(doc("      token_file: secrets\n")), dir, testRegistry(), env())
		wantProblems(t, err, "sources[0].config.token_file: cannot read secrets: ")
	})
	t.Run("both key and key_file", func(t *testing.T) {
		dir := testDir(t)
		writeFile(t, dir, "token", "s3cr3t")
		_, err := config.Parse([]byte(doc("      token: abc\n      token_file: token\n")), dir, testRegistry(), env())
		wantProblems(t, err, "sources[0].config.token_file: give either token or token_file, not both")
	})
	t.Run("both, key_file first", func(t *testing.T) {
		dir := testDir(t)
		writeFile(t, dir, "token", "s3cr3t")
		_, err := config.Parse([]byte(doc("      token_file: token\n      token: abc\n")), dir, testRegistry(), env())
		wantProblems(t, err, "sources[0].config.token_file: give either token or token_file, not both")
	})
	t.Run("key_file given twice", func(t *testing.T) {
		dir := testDir(t)
		writeFile(t, dir, "token", "s3cr3t")
		_, err := config.Parse([]byte(doc("      token_file: token\n      token_file: token\n")), dir, testRegistry(), env())
		wantProblems(t, err, "sources[0].config.token_file: given twice")
	})
	t.Run("empty path", func(t *testing.T) {
		_, err := parse(t, doc("      token_file: \"\"\n"), nil)
		wantProblems(t, err, "sources[0].config.token_file: must not be empty")
	})
	t.Run("not a path", func(t *testing.T) {
		_, err := parse(t, doc("      token_file: [a, b]\n"), nil)
		wantProblems(t, err, "sources[0].config.token_file: must be a file path, got a list")
	})
	t.Run("unset variable in the path", func(t *testing.T) {
		_, err := parse(t, doc("      token_file: ${SECRETS}/token\n"), nil)
		wantProblems(t, err, "sources[0].config.token_file: environment variable SECRETS is not set")
	})
	t.Run("only secrets have a _file form", func(t *testing.T) {
		_, err := parse(t, doc("      timeout_file: t\n"), nil)
		wantProblems(t, err, "sources[0].config.timeout_file: unknown key")
		_, err = parse(t, "directory: {dsn: x.db, driver_file: x}\nsources:\n  - {name: hr, type: fake, config: {path: org.json}}\n", nil)
		wantProblems(t, err, "directory.driver_file: unknown key")
	})
}

// Secret values never appear in an error message, wherever they end up.
func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "Sup3r-S3cret-T0ken"
	lookup := env("TOKEN", secret, "SPACED", secret+" x")
	tests := []struct {
		name string
		doc  string // %s is the secret, written literally
		file string // content of the file "tok", if any
	}{
		{"secret with spaces", "token: ${SPACED}", ""},
		{"literal secret with spaces", "token: \"%s x\"", ""},
		{"secret as a list", "token: [${TOKEN}]", ""},
		{"literal secret as a list", "token: [%s]", ""},
		{"secret as a mapping", "token: {value: %s}", ""},
		{"secret in a duration", "timeout: ${TOKEN}", ""},
		{"secret in a number", "pages: ${TOKEN}", ""},
		{"secret in a float", "share: ${TOKEN}", ""},
		{"secret in a bool", "strict: ${TOKEN}", ""},
		{"secret next to an unset variable", "token: ${TOKEN}${UNSET}", ""},
		{"secret file with spaces", "token_file: tok", secret + " x\n"},
		{"secret file and secret", "token_file: tok\n      token: %s", secret},
		{"misspelt secret key", "tokn: %s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block := tt.doc
			if strings.Contains(block, "%s") {
				block = fmt.Sprintf(block, secret)
			}
			dir := testDir(t)
			if tt.file != "" {
				writeFile(t, dir, "tok", tt.file)
			}
			doc := "directory: {dsn: x.db}\nsources:\n  - name: hr\n    type: fake\n    config:\n      path: org.json\n      " + block + "\n"
			_, err := config.Parse([]byte(doc), dir, testRegistry(), lookup)
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the secret leaks into the error:\n%s", err)
			}
		})
	}
	// Malformed YAML around a secret does not echo it either.
	for _, doc := range []string{
		"sources:\n  - config:\n      token: \"" + secret + "\n",
		"sources:\n  - config:\n      token: " + secret + ": x\n",
		"sources:\n  - config:\n\ttoken: " + secret + "\n",
		"sources:\n  - config: {token: " + secret + "\n",
		"sources:\n  - config:\n      token: '" + secret + "\n",
	} {
		_, err := parse(t, doc, nil)
		if err == nil {
			t.Fatalf("want an error for %q", doc)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the secret leaks into the YAML error:\n%s", err)
		}
	}
	// A secret prints redacted.
	cfg := mustParse(t, minimal+"      token: ${TOKEN}\n", lookup)
	fc := cfg.Sources[0].Connector.(*fakeConfig)
	for _, s := range []string{fmt.Sprint(fc.Token), fmt.Sprintf("%v %+v %#v %s", fc, fc, fc, fc.Token)} {
		if strings.Contains(s, secret) {
			t.Errorf("the secret prints: %s", s)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	for _, spec := range []string{"@every 5m", "0 3 * * *", "@daily", "@hourly", "*/10 * * * 1-5"} {
		s, err := config.ParseSchedule(spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", spec, err)
		} else if s.String() != spec || s.IsZero() {
			t.Errorf("ParseSchedule(%q) = %q (zero %v)", spec, s, s.IsZero())
		}
	}
	for _, spec := range []string{"", "every 5m", "@every", "@every soon", "0 0 3 * * *", "61 * * * *", "* * *"} {
		if _, err := config.ParseSchedule(spec); err == nil {
			t.Errorf("ParseSchedule(%q) succeeded, want an error", spec)
		}
	}
	s, err := config.ParseSchedule(config.DefaultFullSync)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	if got, want := s.Next(from), time.Date(2026, 1, 3, 3, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("next full sync after %v = %v, want %v", from, got, want)
	}
}

// "@every" is taken exactly, cron specs and descriptors go to robfig/cron.
func TestScheduleNext(t *testing.T) {
	from := time.Date(2026, 3, 2, 9, 0, 0, 123, time.UTC)
	for _, tt := range []struct {
		spec string
		want time.Time
	}{
		{"@every 150ms", from.Add(150 * time.Millisecond)}, // cron/v3 would make it 1s
		{"@every 90s", from.Add(90 * time.Second)},
		{"@every 1h30m", from.Add(90 * time.Minute)},
		{"0 3 * * *", time.Date(2026, 3, 3, 3, 0, 0, 0, time.UTC)},
		{"@hourly", time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)},
	} {
		s, err := config.ParseSchedule(tt.spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tt.spec, err)
			continue
		}
		if got := s.Next(from); !got.Equal(tt.want) {
			t.Errorf("ParseSchedule(%q).Next = %v, want %v", tt.spec, got, tt.want)
		}
	}
}

// The service mode's keys: per source schedule_jitter and stale_after,
// server.allow_remote and server.shutdown_timeout.
func TestServiceKeys(t *testing.T) {
	cfg := mustParse(t, minimal+`    schedule_jitter: 45s
    stale_after: 3h
  - name: okta
    type: fake
    stale_after: 0s
    config: {path: org.json}
server:
  listen: "10.1.2.3:9750"
  allow_remote: true
  shutdown_timeout: 2m
`, nil)
	hr, okta := cfg.Sources[0], cfg.Sources[1]
	if hr.ScheduleJitter != 45*time.Second || hr.StaleAfter != 3*time.Hour {
		t.Errorf("hr: jitter %v, stale_after %v", hr.ScheduleJitter, hr.StaleAfter)
	}
	if okta.ScheduleJitter != 0 || okta.StaleAfter != 0 {
		t.Errorf("okta: jitter %v, stale_after %v; want 0, 0 (never)", okta.ScheduleJitter, okta.StaleAfter)
	}
	if s := cfg.Server; s.Listen != "10.1.2.3:9750" || !s.AllowRemote || s.ShutdownTimeout != 2*time.Minute {
		t.Errorf("server = %+v", s)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true, "localhost": true, "LocalHost": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "192.168.1.10": false, "example.com": false,
		"localhost.example.com": false,
	} {
		if got := config.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
