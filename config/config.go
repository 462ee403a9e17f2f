// Package config loads and validates learnsync's YAML configuration.
//
// Loading goes YAML → defaults → ${ENV} expansion and <key>_file secrets →
// validation, and reports every problem at once, each with the path of the
// field it concerns ("sources[1].config.path: file not found").
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/jackc/pgx/v5"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/rules"
)

// DefaultPath is where learnsync looks for its configuration.
const DefaultPath = "learnsync.yaml"

// Config is the whole configuration.
type Config struct {
	Directory   Directory   `yaml:"directory"`
	Identity    Identity    `yaml:"identity"`
	Sources     []Source    `yaml:"sources"`
	Licenses    []License   `yaml:"licenses"`
	Deprovision Deprovision `yaml:"deprovision"`
	Safety      Safety      `yaml:"safety"`
	Reconcile   Reconcile   `yaml:"reconcile"`
	Server      Server      `yaml:"server"`
	History     History     `yaml:"history"`
	HA          HA          `yaml:"ha"`

	// Path is the file the configuration was read from; BaseDir its directory.
	Path    string `yaml:"-"`
	BaseDir string `yaml:"-"`
}

// Directory says where the learning directory is stored.
type Directory struct {
	// Driver is the database: sqlite or postgres.
	Driver string `yaml:"driver"`
	// DSN is the database file (sqlite, relative to the config file's
	// directory) or the PostgreSQL connection string (a URL or key=value
	// pairs). It is a secret (dsn_file, ${VAR}): a DSN may hold a password.
	DSN connectors.Secret `yaml:"dsn"`
	// MaxConns bounds the PostgreSQL connection pool (default 8).
	MaxConns int `yaml:"max_conns"`
}

// Identity says how accounts of several sources become one person.
type Identity struct {
	// MatchOn is email or user_name; both compare trimmed and case-insensitive.
	MatchOn string `yaml:"match_on"`
}

// Match keys.
const (
	MatchEmail    = "email"
	MatchUserName = "user_name"
)

// Source is one identity source. Earlier sources win attribute conflicts.
type Source struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// Schedule is when an incremental fetch (where the source can, else a
	// full one) is due; FullSync when a full fetch is.
	Schedule   Schedule `yaml:"schedule"`
	FullSync   Schedule `yaml:"full_sync"`
	Scope      Scope    `yaml:"scope"`
	SyncGroups []string `yaml:"sync_groups"`
	// Map sets directory attributes from CEL expressions over the raw user
	// (rules.go); attributes not named keep the connector's mapping.
	Map map[string]string `yaml:"map"`
	// ScheduleJitter delays each scheduled fetch (schedule and full_sync)
	// by a random time up to this, so that several instances or sources
	// do not hit an identity provider at the same second. 0 = none.
	ScheduleJitter time.Duration `yaml:"schedule_jitter"`
	// StaleAfter: once the source's fetches have failed (the source is
	// frozen) for longer than this, the service reports itself not ready.
	// 0 = never.
	StaleAfter time.Duration `yaml:"stale_after"`
	Raw        yaml.Node     `yaml:"config"`

	// Connector is the decoded and validated connector block.
	Connector connectors.Config `yaml:"-"`
	// Rules are Map and Scope.When compiled (rules.go).
	Rules SourceRules `yaml:"-"`
}

// Scope limits which users of a source count.
type Scope struct {
	// Groups: only members of these groups (names in this source) count.
	Groups []string `yaml:"groups"`
	// When is a CEL boolean over the raw user: false is out of scope.
	When string `yaml:"when"`
}

// License is one license pool and the rule that fills it.
type License struct {
	Name string `yaml:"name"`
	// Seats is the pool's size; 0 means unlimited.
	Seats int `yaml:"seats"`
	// Groups are "source/group" or bare group names (any source).
	Groups []string `yaml:"groups"`
	// AllActive grants the license to every active person.
	AllActive bool `yaml:"all_active"`
	// When is a CEL boolean over the person; with Groups both must hold.
	When string `yaml:"when"`
	// WhenRule is When compiled (rules.go).
	WhenRule *rules.Rule `yaml:"-"`
}

// Deprovision says what happens to people who leave.
type Deprovision struct {
	// DeleteAfter deletes deactivated people after this long; 0 = never.
	DeleteAfter time.Duration `yaml:"delete_after"`
}

// Safety limits what one run may do without an explicit override.
type Safety struct {
	// MaxDeactivations blocks a run that would deactivate more people; 0 turns
	// the check off.
	MaxDeactivations int `yaml:"max_deactivations"`
	// MaxDeactivationPercent blocks a run that would deactivate more than this
	// share of the active people; 0 turns the check off.
	MaxDeactivationPercent float64 `yaml:"max_deactivation_percent"`
}

// Reconcile says how runs reconcile: incrementally when every source gave
// a delta, fully (the whole directory against every mirror) otherwise.
type Reconcile struct {
	// FullEvery is how long after the last full reconcile the next run is
	// a full one, whatever its sources gave; 0 = only when needed otherwise.
	FullEvery time.Duration `yaml:"full_every"`
}

// DefaultFullEvery is the default of reconcile.full_every.
const DefaultFullEvery = 24 * time.Hour

// Server is the service mode's ops endpoint and lifecycle.
type Server struct {
	// Listen is the ops endpoint's host:port. It must be a loopback
	// address unless AllowRemote is set.
	Listen string `yaml:"listen"`
	// AllowRemote opts in to a non-loopback Listen address: the endpoint
	// has no authentication, and /status names people's sources and pools.
	AllowRemote bool `yaml:"allow_remote"`
	// ShutdownTimeout bounds how long a stopping service lets an apply in
	// progress finish before it abandons it (the transaction rolls back).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Public is the listener for the SCIM endpoints (see public.go).
	Public Public `yaml:"public"`
}

// History bounds what the directory keeps of past runs.
type History struct {
	// KeepRuns is how many runs (with their audit events) are kept.
	KeepRuns int `yaml:"keep_runs"`
}

// Defaults.
const (
	DefaultSchedule = "@every 5m"
	DefaultFullSync = "0 3 * * *"
	DefaultListen   = "127.0.0.1:9750"

	DefaultStaleAfter      = time.Hour
	DefaultShutdownTimeout = 30 * time.Second
)

// Default returns a configuration with every default filled in.
func Default() *Config {
	return &Config{
		Directory:   Directory{Driver: "sqlite", DSN: "learnsync.db"},
		Identity:    Identity{MatchOn: MatchEmail},
		Deprovision: Deprovision{DeleteAfter: 0},
		Safety:      Safety{MaxDeactivations: 50, MaxDeactivationPercent: 20},
		Reconcile:   Reconcile{FullEvery: DefaultFullEvery},
		Server:      Server{Listen: DefaultListen, ShutdownTimeout: DefaultShutdownTimeout},
		History:     History{KeepRuns: 1000},
	}
}

func defaultSource() Source {
	return Source{Schedule: unparsedSchedule(DefaultSchedule), FullSync: unparsedSchedule(DefaultFullSync), SyncGroups: []string{"*"}, StaleAfter: DefaultStaleAfter}
}

// Errors is every problem found in a configuration.
type Errors []error

func (e Errors) Error() string {
	var b strings.Builder
	for i, err := range e {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find the FieldErrors.
func (e Errors) Unwrap() []error { return e }

// ErrInvalid is wrapped by every error Load and Parse return: a configuration
// that is bad, missing or unreadable.
var ErrInvalid = errors.New("invalid configuration")

// Load reads, decodes and validates the configuration at path. Environment
// variables come from lookup (os.LookupEnv when nil). Connector blocks are
// decoded into the types of reg. A bad configuration returns Errors.
func Load(path string, reg connectors.Registry, lookup func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%w: %s: file not found", ErrInvalid, path)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, path, unwrapPathError(err))
	}
	base := filepath.Dir(path)
	cfg, err := Parse(data, base, reg, lookup)
	if err != nil {
		return nil, err
	}
	cfg.Path = path
	return cfg, nil
}

// Parse decodes and validates a configuration document. Relative paths in it
// are relative to baseDir.
func Parse(data []byte, baseDir string, reg connectors.Registry, lookup func(string) (string, bool)) (*Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, Errors{connectors.Errorf("", "the configuration is empty")})
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalid, Errors{connectors.Errorf("", "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))})
	}
	// A second document would be ignored silently, and with it whatever the
	// user meant by it. A bare trailing "---" is harmless.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, Errors{connectors.Errorf("", "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))})
		}
		if len(extra.Content) != 1 || extra.Content[0].Tag != "!!null" {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, Errors{connectors.Errorf("", "only one YAML document is allowed (found a second \"---\")")})
		}
	}
	d := &decoder{lookup: lookup, baseDir: baseDir}
	cfg := Default()
	cfg.BaseDir = baseDir
	doc := &root
	for doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		d.fail("", "the configuration must be a mapping of keys, got %s", kindName(doc))
		return nil, fmt.Errorf("%w: %w", ErrInvalid, Errors(d.errs))
	}
	// Sources get their own defaults before their keys are decoded. The
	// sources key is taken out of the document for that, so a second one
	// must be caught here.
	if keyCount(doc, "sources") > 1 {
		d.fail("sources", "given twice")
	}
	if sn := mappingValue(doc, "sources"); sn != nil && sn.Kind == yaml.SequenceNode {
		cfg.Sources = make([]Source, len(sn.Content))
		for i := range cfg.Sources {
			cfg.Sources[i] = defaultSource()
		}
		d.decodeStruct(withoutKey(doc, "sources"), reflect.ValueOf(cfg).Elem(), "")
		for i, item := range sn.Content {
			d.decode(item, reflect.ValueOf(&cfg.Sources[i]).Elem(), fmt.Sprintf("sources[%d]", i))
		}
	} else {
		d.decode(doc, reflect.ValueOf(cfg).Elem(), "")
	}
	// The directory is one of the two required keys: where the learning
	// directory lives is not something to guess.
	if dn := mappingValue(doc, "directory"); dn == nil || dn.Tag == "!!null" {
		d.fail("directory", "required (at least directory.dsn, the database file)")
	} else if dn.Kind == yaml.MappingNode && mappingValue(dn, "dsn") == nil {
		d.fail("directory.dsn", "required")
	}
	cfg.noteHA(doc)
	cfg.validate(d, reg)
	if len(d.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, Errors(d.errs))
	}
	return cfg, nil
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func keyCount(n *yaml.Node, key string) int {
	c := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			c++
		}
	}
	return c
}

func withoutKey(n *yaml.Node, key string) *yaml.Node {
	c := *n
	c.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != key {
			c.Content = append(c.Content, n.Content[i], n.Content[i+1])
		}
	}
	return &c
}

var sourceName = regexp.MustCompile(`^[a-z0-9-]+$`)

func (c *Config) validate(d *decoder, reg connectors.Registry) {
	c.Directory.validate(d)
	switch c.Identity.MatchOn {
	case MatchEmail, MatchUserName:
	default:
		d.fail("identity.match_on", "must be email or user_name, got %q", c.Identity.MatchOn)
	}
	if len(c.Sources) == 0 {
		d.fail("sources", "at least one source is required")
	}
	names := make(map[string]int)
	for i := range c.Sources {
		c.validateSource(d, reg, i, names)
	}
	c.validateLicenses(d)
	c.compileRules(d)
	if c.Reconcile.FullEvery < 0 {
		d.fail("reconcile.full_every", "must not be negative")
	}
	if c.Deprovision.DeleteAfter < 0 {
		d.fail("deprovision.delete_after", "must not be negative")
	}
	if c.Safety.MaxDeactivations < 0 {
		d.fail("safety.max_deactivations", "must be 0 (off) or more")
	}
	if c.Safety.MaxDeactivationPercent < 0 || c.Safety.MaxDeactivationPercent > 100 {
		d.fail("safety.max_deactivation_percent", "must be between 0 (off) and 100")
	}
	if c.History.KeepRuns < 1 {
		d.fail("history.keep_runs", "must be at least 1")
	}
	c.validateServer(d)
	c.validatePublic(d)
	c.validateHA(d)
}

// validateSource checks sources[i] (names holds the names of the sources
// before it), parses its schedules and decodes its connector block.
func (c *Config) validateSource(d *decoder, reg connectors.Registry, i int, names map[string]int) {
	s := &c.Sources[i]
	p := fmt.Sprintf("sources[%d]", i)
	switch {
	case s.Name == "":
		d.fail(p+".name", "required")
	case !sourceName.MatchString(s.Name):
		d.fail(p+".name", "%q must be lowercase letters, digits and dashes", s.Name)
	default:
		if j, dup := names[s.Name]; dup {
			d.fail(p+".name", "%q is already the name of sources[%d]", s.Name, j)
		} else {
			names[s.Name] = i
		}
	}
	d.parseSchedule(&s.Schedule, p+".schedule")
	d.parseSchedule(&s.FullSync, p+".full_sync")
	if s.ScheduleJitter < 0 {
		d.fail(p+".schedule_jitter", "must not be negative")
	}
	if s.StaleAfter < 0 {
		d.fail(p+".stale_after", "must be 0 (never) or more")
	}
	for j, g := range s.Scope.Groups {
		if strings.TrimSpace(g) == "" {
			d.fail(fmt.Sprintf("%s.scope.groups[%d]", p, j), "must not be empty")
		}
	}
	for j, g := range s.SyncGroups {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			d.fail(fmt.Sprintf("%s.sync_groups[%d]", p, j), "%q is not a valid glob pattern", g)
		}
	}
	c.decodeConnector(d, reg, s, p)
}

// parseSchedule replaces the spec the decoder stored in sched with the
// parsed schedule; a bad spec is a problem at path.
func (d *decoder) parseSchedule(sched *Schedule, path string) {
	parsed, err := ParseSchedule(sched.String())
	if err != nil {
		d.fail(path, "%q is not a cron spec or @every interval: %v", sched.String(), err)
		return
	}
	*sched = parsed
}

func (c *Config) validateLicenses(d *decoder) {
	pools := make(map[string]int)
	for i, l := range c.Licenses {
		p := fmt.Sprintf("licenses[%d]", i)
		if strings.TrimSpace(l.Name) == "" {
			d.fail(p+".name", "required")
		} else if j, dup := pools[l.Name]; dup {
			d.fail(p+".name", "%q is already the name of licenses[%d]", l.Name, j)
		} else {
			pools[l.Name] = i
		}
		if l.Seats < 0 {
			d.fail(p+".seats", "must be 0 (unlimited) or more")
		}
		switch {
		case l.AllActive && len(l.Groups) > 0:
			d.fail(p, "all_active and groups exclude each other")
		case !l.AllActive && len(l.Groups) == 0 && l.When == "":
			d.fail(p, "needs groups or all_active: true")
		}
		for j, g := range l.Groups {
			if strings.TrimSpace(g) == "" {
				d.fail(fmt.Sprintf("%s.groups[%d]", p, j), "must not be empty")
			}
		}
	}
}

func (c *Config) validateServer(d *decoder) {
	if host, port, err := net.SplitHostPort(c.Server.Listen); err != nil {
		d.fail("server.listen", "%q is not host:port", c.Server.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		d.fail("server.listen", "%q: bad port", c.Server.Listen)
	} else if !c.Server.AllowRemote && !IsLoopback(host) {
		d.fail("server.listen", "%q is not a loopback address; the ops endpoint has no authentication: "+
			"set server.allow_remote: true to serve it on the network", c.Server.Listen)
	}
	if c.Server.ShutdownTimeout <= 0 {
		d.fail("server.shutdown_timeout", "must be more than 0")
	}
}

// IsLoopback reports whether host (of a host:port) only listens on the
// machine itself: localhost or a loopback IP. An empty host means every
// interface.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (c *Config) decodeConnector(d *decoder, reg connectors.Registry, s *Source, p string) {
	if s.Type == "" {
		d.fail(p+".type", "required")
		return
	}
	typ, ok := reg[s.Type]
	if !ok {
		d.fail(p+".type", "unknown source type %q (known: %s)", s.Type, strings.Join(registryNames(reg), ", "))
		return
	}
	if s.Raw.Kind == 0 {
		d.fail(p+".config", "required")
		return
	}
	cc := typ.NewConfig()
	before := len(d.errs)
	d.decode(&s.Raw, reflect.ValueOf(cc).Elem(), p+".config")
	if len(d.errs) > before {
		return
	}
	for _, err := range cc.Validate(c.ConnectorOptions(s.Name)) {
		var fe *connectors.FieldError
		if errors.As(err, &fe) {
			d.errs = append(d.errs, connectors.Errorf(join(p+".config", fe.Path), "%s", fe.Msg))
		} else {
			d.errs = append(d.errs, connectors.Errorf(p+".config", "%v", err))
		}
	}
	s.Connector = cc
}

// ConnectorOptions returns the options a source's connector is built and
// validated with (without logger and hooks).
func (c *Config) ConnectorOptions(name string) connectors.Options {
	opts := connectors.Options{Name: name, BaseDir: c.BaseDir}
	if i := c.SourceIndex(name); i >= 0 {
		opts.Attrs = c.Sources[i].Rules.Attrs
	}
	return opts
}

// DatabasePath returns the DSN: on SQLite the file resolved against the
// config file's directory, on PostgreSQL the connection string as given.
func (c *Config) DatabasePath() string {
	if c.Directory.Driver == DriverPostgres {
		return c.Directory.DSN.Reveal()
	}
	return connectors.ResolvePath(c.BaseDir, c.Directory.DSN.Reveal())
}

// DatabaseName names the database for messages: the file, or the
// PostgreSQL host and database without user or password.
func (c *Config) DatabaseName() string {
	if c.Directory.Driver != DriverPostgres {
		return c.DatabasePath()
	}
	cfg, err := pgx.ParseConfig(c.Directory.DSN.Reveal())
	if err != nil {
		return "the PostgreSQL database"
	}
	return fmt.Sprintf("postgres://%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}

// SourceIndex returns the position of the named source, or -1.
func (c *Config) SourceIndex(name string) int {
	for i, s := range c.Sources {
		if s.Name == name {
			return i
		}
	}
	return -1
}

func registryNames(reg connectors.Registry) []string {
	var names []string
	for n := range reg {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
