package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/learnsync/learnsync/reconcile"
)

// Store is what the service needs of the learning directory. The command
// wires the directory in; the service knows only this contract.
type Store interface {
	reconcile.Store
	StatusStore
	// PruneRuns keeps the newest keep runs.
	PruneRuns(ctx context.Context, keep int) (int64, error)
}

// StatusStore is what ReadStatus needs of the directory.
type StatusStore interface {
	// StoredStatus reads what the directory knows of its sources, people
	// and license pools.
	StoredStatus(ctx context.Context) (*StoredStatus, error)
	// Runs returns the newest limit runs, newest first.
	Runs(ctx context.Context, limit int) ([]reconcile.Run, error)
}

// StoredStatus is what the directory knows of its sources, people and
// license pools.
type StoredStatus struct {
	// Sources has every source with a mirror or a fetch in the kept run
	// history, sorted by name.
	Sources []StoredSource
	// People counts the people in the directory.
	People People
	// Pools are the license pools, sorted by name.
	Pools []Pool
}

// StoredSource is what the directory knows about one source.
type StoredSource struct {
	Name string
	// HasCursor is true when a cursor is stored: the next fetch can be
	// incremental where the source supports it.
	HasCursor bool
	// FetchedAt is when a fetch of this source was last committed with its
	// mirror and cursor; FullAt when a full fetch was. Zero: never.
	FetchedAt, FullAt time.Time
	// Users and Groups count the mirror's rows.
	Users, Groups int
	// LastFetch is the newest fetch of this source in the run history; nil
	// when none is kept.
	LastFetch *StoredFetch
	// FrozenSince is the start of the oldest failed fetch after the last
	// successful one. Zero when its last fetch did not fail.
	FrozenSince time.Time
}

// StoredFetch is one fetch of a source as its run recorded it.
type StoredFetch struct {
	// RunID and At are the run's id and start.
	RunID int64
	At    time.Time
	reconcile.SourceRun
}

// applyStore lets an apply finish when the service stops: the engine's
// writes run on the service's apply context, which only the end of the
// shutdown grace period cancels. Fetches still see the run's context, and
// the engine does not apply after a cancelled fetch.
type applyStore struct {
	Store
	ctx context.Context
	log *slog.Logger
}

func (a applyStore) Commit(_ context.Context, c *reconcile.Commit) error {
	a.log.Debug("applying", "changes", c.Run.Summary.Total)
	return a.Store.Commit(a.ctx, c)
}

func (a applyStore) RecordRun(_ context.Context, r *reconcile.Run) error {
	return a.Store.RecordRun(a.ctx, r)
}

// scopedApplyStore is an applyStore over a store that can read parts of
// the directory, so that service runs can be incremental.
type scopedApplyStore struct {
	reconcile.ScopedStore
	apply applyStore
}

func (a scopedApplyStore) Commit(ctx context.Context, c *reconcile.Commit) error {
	return a.apply.Commit(ctx, c)
}

func (a scopedApplyStore) RecordRun(ctx context.Context, r *reconcile.Run) error {
	return a.apply.RecordRun(ctx, r)
}
