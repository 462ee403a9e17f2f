package directory

import (
	"context"
	"time"
)

// AuditEvent is one recorded change.
type AuditEvent struct {
	ID         int64
	RunID      int64
	At         time.Time
	Action     string
	ObjectType string
	ObjectID   string
	Before     string
	After      string
}

// AuditEvents returns the audit events of a run (all runs when runID is 0),
// oldest first, at most limit (0 = all).
func (s *Store) AuditEvents(ctx context.Context, runID int64, limit int) ([]AuditEvent, error) {
	query := `SELECT id, run_id, at, action, object_type, object_id, before, after FROM audit_events`
	var args []any
	if runID != 0 {
		query += ` WHERE run_id = ?`
		args = append(args, runID)
	}
	query += ` ORDER BY id`
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	evs := []AuditEvent{}
	var ev AuditEvent
	err := eachRow(ctx, s.db, "read audit events", query, args,
		[]any{&ev.ID, &ev.RunID, &ev.At, &ev.Action, &ev.ObjectType, &ev.ObjectID, &ev.Before, &ev.After},
		func() error { evs = append(evs, ev); return nil })
	if err != nil {
		return nil, err
	}
	return evs, nil
}
