package main

import (
	"testing"
	"time"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/reconcile"
)

// In HA mode the engine's store is no reconcile.Locker (fencing replaces
// the run lock, which a frozen leader would keep); alone, it is the store.
func TestEngineStoreInHAMode(t *testing.T) {
	st := &directory.Store{}
	if _, ok := engineStore(&config.Config{HA: config.HA{Enabled: true}}, st).(reconcile.Locker); ok {
		t.Error("the HA engine's store is a reconcile.Locker")
	}
	if _, ok := engineStore(&config.Config{HA: config.HA{Enabled: true}}, st).(reconcile.ScopedStore); !ok {
		t.Error("the HA engine's store is not a reconcile.ScopedStore: its runs would not be incremental")
	}
	if got := engineStore(&config.Config{}, st); got != reconcile.Store(st) {
		t.Errorf("without ha the engine's store is %T, want the directory", got)
	}
}

// haDSN adds the idle-in-transaction timeout to either DSN form, and keeps
// one the DSN sets.
func TestHADSN(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://u:p@db/ls?sslmode=require", "postgres://u:p@db/ls?idle_in_transaction_session_timeout=1500&sslmode=require"},
		{"postgres://db/ls?idle_in_transaction_session_timeout=9000", "postgres://db/ls?idle_in_transaction_session_timeout=9000"},
		{"host=db dbname=ls ", "host=db dbname=ls idle_in_transaction_session_timeout=1500"},
		{"host=db idle_in_transaction_session_timeout=9000", "host=db idle_in_transaction_session_timeout=9000"},
	} {
		if got := haDSN(tt.in, 1500*time.Millisecond); got != tt.want {
			t.Errorf("haDSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
