package config_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/learnsync/learnsync/config"
)

// FuzzParse checks that no document makes Parse panic, that a rejected one
// always comes back as config.Errors wrapping ErrInvalid, and that an
// accepted one holds what the rest of learnsync relies on.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		minimal,
		issueExample,
		"",
		"~",
		"- a\n",
		"a: b\n---\nc: d\n",
		"directory: {dsn: x}\nsources: []\n",
		"directory: {dsn: x}\nsources:\n  - &hr {name: hr, type: fake, config: {path: org.json}}\n  - *hr\n",
		"directory: {dsn: x}\nsources:\n  - {name: hr, type: plain, config: {fail: false}}\nsources: []\n",
		"directory: {dsn: \"${DIR}/x.db\"}\nsources:\n  - name: ${NAME}\n    type: fake\n    config:\n      path: org.json\n      token: ${SECRET}\n      token_file: tok\n      timeout: ${T}\n      pages: ${N}\n",
		"directory: {dsn: x}\nsources:\n  - name: hr\n    type: fake\n    schedule: \"@every 1h\"\n    full_sync: \"0 3 * * *\"\n    sync_groups: [\"Eng*\", \"[\"]\n    scope: {groups: [a]}\n    config: {path: org.json, token_file: tok, scopes: [a, \"\"], share: 0.5, strict: yes}\n" +
			"licenses:\n  - {name: pro, seats: 3, groups: [hr/a]}\n  - {name: all, all_active: true}\n" +
			"deprovision: {delete_after: 720h}\nsafety: {max_deactivations: 5, max_deactivation_percent: 12.5}\nhistory: {keep_runs: 10}\nserver: {listen: \":9750\"}\n",
		"directory: {dsn: x}\nsources:\n  - {name: hr, type: file, config: {path: org.json, format: json}}\n",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	for name, content := range map[string]string{"org.json": `{"users":[],"groups":[]}`, "tok": "s3cr3t\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	reg := testRegistry()
	lookup := env("DIR", "/tmp", "NAME", "hr", "SECRET", "fuzz-secret", "T", "5s", "N", "7")
	validName := regexp.MustCompile(`^[a-z0-9-]+$`)

	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, dir, reg, lookup)
		if err != nil {
			if cfg != nil {
				t.Errorf("Parse returned a config and an error")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error holds no config.Errors: %v", err)
			}
			for _, e := range errs {
				if e == nil || e.Error() == "" {
					t.Errorf("empty problem in %q", err)
				}
			}
			return
		}
		if cfg == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		if len(cfg.Sources) == 0 {
			t.Fatal("accepted a configuration without sources")
		}
		names := make(map[string]bool)
		for i, s := range cfg.Sources {
			if s.Name == "" || s.Type == "" {
				t.Fatalf("sources[%d] has name %q, type %q", i, s.Name, s.Type)
			}
			if !validName.MatchString(s.Name) || names[s.Name] {
				t.Errorf("sources[%d]: bad or duplicate name %q accepted", i, s.Name)
			}
			names[s.Name] = true
			if _, ok := reg[s.Type]; !ok {
				t.Errorf("sources[%d]: unknown type %q accepted", i, s.Type)
			}
			if s.Connector == nil {
				t.Errorf("sources[%d]: no connector config", i)
			}
			if _, err := config.ParseSchedule(s.Schedule.String()); err != nil {
				t.Errorf("sources[%d]: bad schedule accepted: %v", i, err)
			}
			if _, err := config.ParseSchedule(s.FullSync.String()); err != nil {
				t.Errorf("sources[%d]: bad full_sync accepted: %v", i, err)
			}
		}
		if cfg.SourceIndex(cfg.Sources[0].Name) != 0 {
			t.Errorf("SourceIndex(%q) != 0", cfg.Sources[0].Name)
		}
		if cfg.Directory.Driver != "sqlite" || cfg.Directory.DSN == "" {
			t.Errorf("directory = %+v", cfg.Directory)
		}
		if cfg.Identity.MatchOn != config.MatchEmail && cfg.Identity.MatchOn != config.MatchUserName {
			t.Errorf("match_on = %q", cfg.Identity.MatchOn)
		}
		for i, l := range cfg.Licenses {
			if l.Name == "" || l.Seats < 0 || l.AllActive == (len(l.Groups) > 0) {
				t.Errorf("licenses[%d] = %+v accepted", i, l)
			}
		}
		p := cfg.Safety.MaxDeactivationPercent
		if math.IsNaN(p) || p < 0 || p > 100 || cfg.Safety.MaxDeactivations < 0 {
			t.Errorf("safety = %+v accepted", cfg.Safety)
		}
		if cfg.Deprovision.DeleteAfter < 0 || cfg.History.KeepRuns < 1 {
			t.Errorf("deprovision %+v, history %+v accepted", cfg.Deprovision, cfg.History)
		}
		if fc, ok := cfg.Sources[0].Connector.(*fakeConfig); ok && fc.opts == nil {
			t.Error("the connector's Validate was not called")
		}
	})
}
