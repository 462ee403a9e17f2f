package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/ha"
	"github.com/learnsync/learnsync/internal/version"
	"github.com/learnsync/learnsync/reconcile"
)

// haFence is what the directory calls inside each apply transaction of a
// service in HA mode: el's fence, once el is elected (before, nothing may
// apply).
type haFence struct{ el *ha.Elector }

func (f *haFence) fence(ctx context.Context, tx *sql.Tx) error {
	if f.el == nil {
		return fmt.Errorf("fence: %w", ha.ErrDeposed)
	}
	return f.el.Fence(ctx, tx)
}

// storeOptions are the options the directory of cfg is opened with: in HA
// service mode, every apply is fenced by the election.
func (a *app) storeOptions(cfg *config.Config) (directory.Options, error) {
	opts := directory.Options{MaxConns: cfg.Directory.MaxConns}
	if cfg.HA.Enabled && a.fence != nil {
		opts.Fence = a.fence.fence
	}
	return opts, nil
}

// elector joins the election of cfg's directory (HA mode only; nil
// otherwise) and plugs it into the fence.
func (a *app) elector(ctx context.Context, cfg *config.Config, store *directory.Store) (*ha.Elector, error) {
	if !cfg.HA.Enabled {
		return nil, nil
	}
	el, err := ha.New(ctx, store.DB(), ha.Options{Instance: cfg.HA.Instance, Lease: cfg.HA.Lease,
		Version: version.Get().Short(), Logger: a.log})
	if err != nil {
		return nil, err
	}
	a.fence.el = el
	return el, nil
}

// fencedStore is the directory as the engine of an HA service sees it: a
// reconcile.ScopedStore that is not a reconcile.Locker. Fencing replaces
// the run lock, whose PostgreSQL form (a session advisory lock) a frozen
// leader would keep holding, blocking its successor's runs.
type fencedStore struct{ reconcile.ScopedStore }

// engineStore is the store the engine of cfg's service runs on.
func engineStore(cfg *config.Config, store *directory.Store) reconcile.Store {
	if cfg.HA.Enabled {
		return fencedStore{store}
	}
	return store
}

// idleInTx is the PostgreSQL setting that ends a session whose transaction
// waits on its client longer than this.
const idleInTx = "idle_in_transaction_session_timeout"

// haDSN is dsn with the sessions' idle_in_transaction_session_timeout set
// to the lease (unless dsn sets it). A leader frozen or cut off in the
// middle of an apply keeps its transaction, and the row locks it took, open
// on the server: its successor's apply would wait on them until the old
// leader resumes, or its TCP connection is found dead, minutes later. The
// server ends such a transaction a lease after its last statement, so the
// successor's writes wait at most that long; the old leader's apply fails
// (its connection is gone), which its fence would have made it do anyway.
func haDSN(dsn string, lease time.Duration) string {
	ms := strconv.FormatInt(lease.Milliseconds(), 10)
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		if q.Get(idleInTx) == "" {
			q.Set(idleInTx, ms)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	if strings.Contains(dsn, idleInTx) {
		return dsn
	}
	return strings.TrimSpace(dsn) + " " + idleInTx + "=" + ms
}

// directoryDSN is the dsn the directory of cfg is opened with.
func directoryDSN(cfg *config.Config) string {
	if cfg.HA.Enabled && cfg.Directory.Driver == config.DriverPostgres {
		return haDSN(cfg.DatabasePath(), cfg.HA.Lease)
	}
	return cfg.DatabasePath()
}
