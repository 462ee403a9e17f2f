package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/internal/version"
	"github.com/learnsync/learnsync/reconcile"
)

// Exit codes scripts can rely on.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitBlocked = 3
	exitPartial = 4
)

// exitErr carries an exit code out of a command.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitErr) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitErr{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// app holds what every command shares.
type app struct {
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
	configPath     string
	logFormat      string
	logLevel       string
	log            *slog.Logger
	// fence fences the service's applies in HA mode (see ha.go).
	fence *haFence
}

// Main runs learnsync with args and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	a := &app{stdout: stdout, stderr: stderr, lookup: lookup}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitErr
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "learnsync:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "learnsync:", err)
	if isUsage(err) {
		return exitUsage
	}
	return exitError
}

// isUsage recognizes cobra's own errors about flags and arguments.
func isUsage(err error) bool {
	msg := err.Error()
	for _, s := range []string{"unknown flag", "unknown shorthand", "unknown command", "flag needs an argument",
		"invalid argument", "accepts ", "requires ", "arg(s)", "flag accessed but not defined"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "learnsync",
		Short: "Keep a learning platform's user directory in step with your identity providers",
		Long: `learnsync pulls users, groups and memberships from identity providers (Okta,
Microsoft Entra ID, OneLogin, or a file export), and keeps a learning directory in
step: profiles created and updated, licenses assigned by rules within seat limits,
groups mirrored, people who leave deactivated — never because a fetch failed.

Exit codes: 0 ok, 1 error, 2 bad usage or configuration, 3 blocked by a safety
limit, 4 partial (a source failed and was left as it was).`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setupLogging()
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &exitErr{code: exitUsage, err: fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&a.configPath, "config", "c", config.DefaultPath, "configuration file")
	pf.StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(a.runCommand(), a.planCommand(), a.exportCommand(), a.validateCommand(), a.statusCommand(),
		a.explainCommand(), a.directoryCommand(), a.versionCommand())
	root.Version = version.Get().Version
	root.SetVersionTemplate(version.Get().String() + "\n")
	return root
}

func (a *app) setupLogging() error {
	var level slog.Level
	switch strings.ToLower(a.logLevel) {
	case "debug":
		level = slog.LevelDebug
	case "info", "":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return usageErr("--log-level must be debug, info, warn or error, got %q", a.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch a.logFormat {
	case "text", "":
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
	default:
		return usageErr("--log-format must be text or json, got %q", a.logFormat)
	}
	return nil
}

// loadConfig reads and validates the configuration; problems exit 2.
func (a *app) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(a.configPath, registry, a.lookup)
	if err != nil {
		return nil, &exitErr{code: exitUsage, err: err}
	}
	return cfg, nil
}

// open loads the configuration and opens its directory, which the caller
// closes. A bad configuration, or a dsn that is not learnsync's database,
// exits 2.
func (a *app) open(ctx context.Context) (*config.Config, *directory.Store, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	opts, err := a.storeOptions(cfg)
	if err != nil {
		return nil, nil, err
	}
	st, err := directory.OpenDriver(ctx, cfg.Directory.Driver, directoryDSN(cfg), opts)
	if err != nil {
		if errors.Is(err, directory.ErrNotSQLite) || errors.Is(err, directory.ErrTooNew) {
			return nil, nil, &exitErr{code: exitUsage, err: fmt.Errorf("directory.dsn: %w", err)}
		}
		return nil, nil, err
	}
	return cfg, st, nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// engine wires the configured sources and rules into a reconcile engine.
// hooks, if not nil, gives each source's connector its traffic callbacks
// (the service's metrics and progress logs).
func (a *app) engine(cfg *config.Config, store reconcile.Store, hooks func(source string) connectors.Hooks) (*reconcile.Engine, error) {
	e := &reconcile.Engine{
		Store:  store,
		Logger: a.log,
		Rules: reconcile.Rules{
			MatchOn:     cfg.Identity.MatchOn,
			DeleteAfter: cfg.Deprovision.DeleteAfter,
		},
		Safety: reconcile.Safety{
			MaxDeactivations:       cfg.Safety.MaxDeactivations,
			MaxDeactivationPercent: cfg.Safety.MaxDeactivationPercent,
		},
		FullEvery: cfg.Reconcile.FullEvery,
	}
	for _, l := range cfg.Licenses {
		e.Rules.Licenses = append(e.Rules.Licenses, reconcile.LicenseRule{Name: l.Name, Seats: l.Seats, Groups: l.Groups, AllActive: l.AllActive, When: l.WhenRule})
	}
	keepAttrs(store, cfg)
	for _, s := range cfg.Sources {
		rules := reconcile.SourceRules{Name: s.Name, ScopeGroups: s.Scope.Groups, SyncGroups: s.SyncGroups, Map: s.Rules.Map, When: s.Rules.When}
		opts := cfg.ConnectorOptions(s.Name)
		opts.Logger = a.log.With("source", s.Name)
		if hooks != nil {
			opts.Hooks = hooks(s.Name)
		}
		conn, err := registry[s.Type].New(s.Connector, opts)
		if err != nil {
			return nil, fmt.Errorf("sources[%d] (%s): %w", cfg.SourceIndex(s.Name), s.Name, err)
		}
		e.Rules.Sources = append(e.Rules.Sources, rules)
		e.Sources = append(e.Sources, reconcile.Source{Rules: rules, Connector: conn})
	}
	return e, nil
}

func resultCode(r reconcile.RunResult) int {
	switch r {
	case reconcile.ResultOK:
		return exitOK
	case reconcile.ResultBlocked:
		return exitBlocked
	case reconcile.ResultPartial:
		return exitPartial
	default:
		return exitError
	}
}

// cycle loads the configuration, opens the directory and runs one cycle:
// the path shared by `run --once` and `plan`. lockWait bounds the wait for
// another process's run on the same directory (0: the engine's default).
func (a *app) cycle(ctx context.Context, opts reconcile.RunOptions, full bool, lockWait time.Duration) (*reconcile.Outcome, error) {
	cfg, store, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	if cfg.HA.Enabled && !opts.DryRun {
		return nil, usageErr("ha is configured: run --once would apply beside the leader of the running instances; use plan, or run the service")
	}
	e, err := a.engine(cfg, store, nil)
	if err != nil {
		return nil, err
	}
	e.LockWait = lockWait
	if full {
		opts.Fetch = allFull(cfg)
		opts.FullReconcile = true
	}
	out, err := e.Run(ctx, opts)
	if err != nil {
		return nil, err
	}
	if !opts.DryRun {
		if _, err := store.PruneRuns(ctx, cfg.History.KeepRuns); err != nil {
			a.log.Warn("prune run history", "error", err)
		}
	}
	return out, nil
}

func (a *app) runCommand() *cobra.Command {
	var once, allow, full bool
	var lockWait time.Duration
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Fetch every source, reconcile and apply (--once), or run as a service",
		Long: `Fetch every source (fully the first time, incrementally after where the source
can), compute the plan, check it against the safety limits and apply it in one
transaction. Prints a one-line summary.

Without --once, learnsync runs as a long-lived service: one cycle at start,
then each source is fetched on its schedule (fully on its full_sync) and a
reconcile follows every fetch; runs never overlap. The ops endpoint on
server.listen serves /healthz, /readyz, /metrics (Prometheus) and /status
(JSON). SIGTERM or SIGINT stops it (an apply in progress finishes first,
within server.shutdown_timeout) with exit 0; SIGHUP reloads the configuration
(a bad one is refused and the running one stays). --full makes the first
cycle fetch every source fully. See docs/OPERATIONS.md.

Exit codes: 0 ok, 1 error, 2 bad configuration, 3 blocked by a safety limit
(nothing applied; rerun with --allow-mass-deactivation to apply it once),
4 partial (a source failed; it was frozen and nobody lost anything because of it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !once {
				if allow {
					return usageErr("--allow-mass-deactivation applies one blocked plan: use it with --once, not in service mode")
				}
				return a.serve(cmd.Context(), full)
			}
			if lockWait < 0 {
				return usageErr("--lock-wait must not be negative, got %v", lockWait)
			}
			if lockWait == 0 {
				lockWait = -1 // the engine's "do not wait"
			}
			out, err := a.cycle(cmd.Context(), reconcile.RunOptions{Trigger: reconcile.TriggerOnce, AllowMassDeactivation: allow}, full, lockWait)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, summaryLine(out))
			if code := resultCode(out.Run.Result); code != exitOK {
				return &exitErr{code: code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "run one cycle and exit (without it: service mode)")
	cmd.Flags().BoolVar(&allow, "allow-mass-deactivation", false, "apply a plan that exceeds the safety limits, this once")
	cmd.Flags().BoolVar(&full, "full", false, "fetch every source fully and reconcile the whole directory")
	cmd.Flags().DurationVar(&lockWait, "lock-wait", 30*time.Second,
		"with --once: how long to wait for another learnsync run on the same directory before giving up (exit 1); 0 = do not wait")
	return cmd
}

func allFull(cfg *config.Config) map[string]reconcile.FetchMode {
	m := make(map[string]reconcile.FetchMode)
	for _, s := range cfg.Sources {
		m[s.Name] = reconcile.FetchFull
	}
	return m
}

// summaryLine is the one line `run --once` prints.
func summaryLine(out *reconcile.Outcome) string {
	r := out.Run
	s := r.Summary
	var b strings.Builder
	fmt.Fprintf(&b, "run %d %s: %d created, %d updated, %d deactivated, %d reactivated, %d deleted; groups %d; memberships +%d -%d; licenses +%d -%d",
		r.ID, r.Result, s.Create, s.Update, s.Deactivate, s.Reactivate, s.Delete,
		s.GroupsCreate+s.GroupsUpdate+s.GroupsDelete, s.MembersAdd, s.MembersDel, s.Grant, s.Revoke)
	if s.Waiting > 0 {
		fmt.Fprintf(&b, ", %d waiting for a seat", s.Waiting)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(&b, "; %d problems", len(r.Problems))
	}
	for _, src := range r.Sources {
		if src.Result == reconcile.SourceFailed {
			fmt.Fprintf(&b, "; source %s frozen: %s", src.Name, src.Error)
		}
	}
	if out.Blocked != "" {
		fmt.Fprintf(&b, "; BLOCKED: %s (nothing applied; review with `learnsync plan`, apply once with --allow-mass-deactivation)", out.Blocked)
	}
	fmt.Fprintf(&b, " (%s)", r.EndedAt.Sub(r.StartedAt).Round(1e6))
	return b.String()
}

func (a *app) planCommand() *cobra.Command {
	var output string
	var full bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Fetch every source and show what a run would change, changing nothing",
		Long: `Fetch every source and show the plan a run would apply, like terraform plan:
"+" create, "~" update (field: old → new), "-" deactivate or delete, license
grants and revokes, and pools short of seats. A grant or revocation by a license
with a when rule names it ("+ license pro → ann@corp: granted (when: ...)"); see
learnsync explain for one person. Nothing is written, not even the sources'
mirrors or cursors.

Exit codes: 0 plan shown, 1 error, 2 bad configuration, 3 the plan would be
blocked by a safety limit, 4 a source failed (the plan treats it as frozen).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageErr("--output must be text or json, got %q", output)
			}
			out, err := a.cycle(cmd.Context(), reconcile.RunOptions{Trigger: reconcile.TriggerOnce, DryRun: true}, full, 0)
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(a.stdout, planJSON(out)); err != nil {
					return err
				}
			} else {
				writePlanText(a.stdout, out)
			}
			if code := resultCode(out.Run.Result); code != exitOK {
				return &exitErr{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&full, "full", false, "fetch every source fully and plan the whole directory")
	return cmd
}

func (a *app) exportCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "Print the learning directory as JSON",
		Long: `Print the learning directory as JSON: users (with their groups, licenses and
identities), groups (with their members' emails) and license pools, sorted. The
shape is stable; see the README.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, store, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer store.Close()
			ex, err := store.Export(cmd.Context())
			if err != nil {
				return err
			}
			return writeJSON(a.stdout, ex)
		},
	}
}

func (a *app) validateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the configuration and report every problem at once",
		Long: `Check the configuration: YAML syntax, unknown keys, required fields, schedules,
each source's own block (files exist, URLs are https, credentials given), and
that the directory file, if it exists, is a SQLite database. Every problem is
printed with its field path. Exit 0 when valid, 2 when not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(a.configPath, registry, a.lookup)
			if err != nil {
				var errs config.Errors
				if errors.As(err, &errs) {
					for _, e := range errs {
						fmt.Fprintln(a.stdout, e)
					}
					return &exitErr{code: exitUsage, err: fmt.Errorf("%s: %s", a.configPath, plural(len(errs), "problem"))}
				}
				return &exitErr{code: exitUsage, err: err}
			}
			if cfg.Directory.Driver == config.DriverSQLite {
				err = directory.CheckFile(cfg.DatabasePath())
			}
			if err != nil {
				fmt.Fprintf(a.stdout, "directory.dsn: %v\n", err)
				return &exitErr{code: exitUsage, err: fmt.Errorf("%s: %s", a.configPath, plural(1, "problem"))}
			}
			fmt.Fprintf(a.stdout, "%s: valid (%s, %s)\n", a.configPath, plural(len(cfg.Sources), "source"), plural(len(cfg.Licenses), "license pool"))
			return nil
		},
	}
}

// plural returns "1 problem" or "3 problems".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
