package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/config"
)

// TestHARefusedOnSQLite: a SQLite directory is one machine's; every ha key
// is refused with its path, and an empty ha block too.
func TestHARefusedOnSQLite(t *testing.T) {
	_, err := parse(t, minimal+"ha:\n  lease: 10s\n  instance: a\n", nil)
	wantProblems(t, err,
		"ha.lease: high availability needs directory.driver: postgres",
		"ha.instance: high availability needs directory.driver: postgres")
	_, err = parse(t, minimal+"ha: {}\n", nil)
	wantProblems(t, err, "ha: high availability needs directory.driver: postgres")
	if cfg := mustParse(t, minimal, nil); cfg.HA.Enabled {
		t.Error("ha is enabled without an ha block")
	}
	if cfg := mustParse(t, minimal+"ha:\n", nil); cfg.HA.Enabled {
		t.Error("ha is enabled by a null ha block")
	}
}

// postgresMinimal is minimal on PostgreSQL.
var postgresMinimal = strings.Replace(minimal, "  dsn: learnsync.db", "  driver: postgres\n  dsn: postgres://learnsync@db/learnsync", 1)

// TestHAOnPostgres: defaults, and the bounds of ha.lease.
func TestHAOnPostgres(t *testing.T) {
	cfg := mustParse(t, postgresMinimal+"ha: {}\n", nil)
	if !cfg.HA.Enabled || cfg.HA.Lease != config.DefaultLease || cfg.HA.Instance != "" {
		t.Errorf("ha = %+v, want enabled with lease %s", cfg.HA, config.DefaultLease)
	}
	cfg = mustParse(t, postgresMinimal+"ha:\n  lease: 2s\n  instance: vm-1\n", nil)
	if cfg.HA.Lease != 2*time.Second || cfg.HA.Instance != "vm-1" {
		t.Errorf("ha = %+v", cfg.HA)
	}
	_, err := parse(t, postgresMinimal+"ha:\n  lease: 100ms\n", nil)
	wantProblems(t, err, "ha.lease: must be at least 1s, got 100ms")
	_, err = parse(t, postgresMinimal+"ha:\n  lease: soon\n", nil)
	wantProblem(t, err, "ha.lease:")
	_, err = parse(t, postgresMinimal+"ha:\n  leese: 2s\n", nil)
	wantProblem(t, err, "ha.leese:")
}
