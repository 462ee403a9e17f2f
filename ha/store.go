package ha

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The election's tables belong to ha, not to the directory's migrations: a
// directory copied elsewhere starts without a leader, and the election
// asks nothing of the directory's schema. learnsync_lease has one row (the
// current term); learnsync_terms keeps every term (an epoch is never
// reused: it is the primary key), learnsync_instances every instance seen,
// learnsync_applies every apply transaction the fence let commit, with
// its epoch (kept 90 days): that no commit falls outside its own term is
// what the chaos test checks.
const schema = `
CREATE TABLE IF NOT EXISTS learnsync_lease (
	id          INT PRIMARY KEY CHECK (id = 1),
	instance    TEXT NOT NULL,
	epoch       BIGINT NOT NULL,
	acquired_at TIMESTAMPTZ NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS learnsync_terms (
	epoch       BIGINT PRIMARY KEY,
	instance    TEXT NOT NULL,
	version     TEXT NOT NULL,
	started_at  TIMESTAMPTZ NOT NULL,
	held_until  TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS learnsync_instances (
	instance    TEXT PRIMARY KEY,
	version     TEXT NOT NULL,
	started_at  TIMESTAMPTZ NOT NULL,
	seen_at     TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS learnsync_applies (
	epoch       BIGINT NOT NULL,
	instance    TEXT NOT NULL,
	at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS learnsync_applies_at ON learnsync_applies(at)`

// schemaLock serializes the CREATE TABLEs of instances starting together
// (two concurrent CREATE TABLE IF NOT EXISTS can both try to create). A
// transaction-scoped lock works behind a pooler in transaction mode.
const schemaLock = 0x6c73_6861 // "lsha"

func createTables(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ha: create tables: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLock); err != nil {
		return fmt.Errorf("ha: create tables: %w", err)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("ha: create tables: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ha: create tables: %w", err)
	}
	return nil
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// tryAcquire takes the lease when nobody holds it or it has expired, and
// returns the new epoch (0: another instance holds it). The state is
// updated either way.
func (e *Elector) tryAcquire(ctx context.Context) (int64, error) {
	// Read first: standbys do not lock the row of a live lease.
	if err := e.read(ctx); err != nil {
		return 0, err
	}
	if e.State().Live {
		return 0, nil
	}
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("acquire the lease: %w", err)
	}
	defer tx.Rollback()
	var epoch int64
	var since time.Time
	// The upsert's WHERE is evaluated on the row as it is once the lock is
	// ours: of several instances trying at once, one wins.
	err = tx.QueryRowContext(ctx, `
		INSERT INTO learnsync_lease AS l (id, instance, epoch, acquired_at, expires_at)
		VALUES (1, $1, 1, now(), now() + $2 * interval '1 millisecond')
		ON CONFLICT (id) DO UPDATE SET instance = $1, epoch = l.epoch + 1, acquired_at = now(),
			expires_at = now() + $2 * interval '1 millisecond'
		WHERE l.expires_at <= now()
		RETURNING epoch, acquired_at`, e.name, ms(e.lease)).Scan(&epoch, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil // another instance was quicker
	}
	if err != nil {
		return 0, fmt.Errorf("acquire the lease: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO learnsync_terms (epoch, instance, version, started_at, held_until)
		VALUES ($1, $2, $3, $4::timestamptz, $4::timestamptz + $5 * interval '1 millisecond')`, epoch, e.name, e.version, since, ms(e.lease)); err != nil {
		return 0, fmt.Errorf("acquire the lease: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM learnsync_applies WHERE at < now() - interval '90 days'`); err != nil {
		return 0, fmt.Errorf("acquire the lease: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("acquire the lease: %w", err)
	}
	e.mu.Lock()
	e.held, e.until = epoch, time.Now().Add(e.lease) // hold sets it from before the statement
	e.mu.Unlock()
	e.setState(func(s *State) {
		*s = State{Role: RoleLeader, Leader: e.name, Since: since, Epoch: epoch, Live: true, Checked: time.Now()}
	})
	return epoch, nil
}

// read reads the lease into the state (this instance is a standby).
func (e *Elector) read(ctx context.Context) error {
	var st State
	err := e.db.QueryRowContext(ctx, `SELECT instance, epoch, acquired_at, expires_at > now() FROM learnsync_lease WHERE id = 1`).
		Scan(&st.Leader, &st.Epoch, &st.Since, &st.Live)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read the lease: %w", err)
	}
	st.Role, st.Checked = RoleStandby, time.Now()
	e.setState(func(s *State) { *s = st })
	return nil
}

// renew extends the lease of epoch; false: the lease is not ours (any more),
// or it had expired already.
func (e *Elector) renew(ctx context.Context, epoch int64) (bool, error) {
	var until time.Time
	err := e.db.QueryRowContext(ctx, `
		WITH l AS (
			UPDATE learnsync_lease SET expires_at = now() + $3 * interval '1 millisecond'
			WHERE id = 1 AND instance = $1 AND epoch = $2 AND expires_at > now()
			RETURNING epoch, expires_at)
		UPDATE learnsync_terms t SET held_until = l.expires_at FROM l WHERE t.epoch = l.epoch
		RETURNING t.held_until`, e.name, epoch, ms(e.lease)).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("renew the lease: %w", err)
	}
	e.setState(func(s *State) { s.Checked, s.Live, s.Err = time.Now(), true, "" })
	return true, nil
}

// release ends this instance's term now, so that a standby need not wait
// for the lease to expire (a clean stop, a rolling upgrade).
func (e *Elector) release(epoch int64) {
	ctx, cancel := context.WithTimeout(context.Background(), e.lease/3)
	defer cancel()
	e.mu.Lock()
	e.held = 0
	e.mu.Unlock()
	_, err := e.db.ExecContext(ctx, `
		WITH l AS (
			UPDATE learnsync_lease SET expires_at = now()
			WHERE id = 1 AND instance = $1 AND epoch = $2 AND expires_at > now()
			RETURNING epoch, expires_at)
		UPDATE learnsync_terms t SET held_until = l.expires_at FROM l WHERE t.epoch = l.epoch`, e.name, epoch)
	if err != nil {
		e.log.Warn("give up the lease (a standby takes over when it expires)", "epoch", epoch, "error", err)
	} else {
		e.log.Info("gave up the lease", "epoch", epoch)
	}
	e.setState(func(s *State) { s.Role, s.Live = RoleStandby, false })
}

// heartbeat says this instance is alive and which version it runs.
func (e *Elector) heartbeat(ctx context.Context) {
	_, err := e.db.ExecContext(ctx, `
		INSERT INTO learnsync_instances (instance, version, started_at, seen_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (instance) DO UPDATE SET version = $2, started_at = $3, seen_at = now()`, e.name, e.version, e.started)
	if err != nil && ctx.Err() == nil {
		e.log.Debug("instance heartbeat", "error", err)
	}
}

// Fence checks, inside tx (an apply transaction), that this instance still
// holds the current epoch and its lease has not expired by the database's
// clock, and locks the lease row until tx ends: a takeover's UPDATE waits
// for this transaction, or this one sees the new epoch and fails with
// ErrDeposed. Plug it into directory.Options.Fence.
func (e *Elector) Fence(ctx context.Context, tx *sql.Tx) error {
	e.mu.Lock()
	epoch, until := e.held, e.until
	e.mu.Unlock()
	if epoch == 0 || !time.Now().Before(until) {
		return fmt.Errorf("fence: %w", ErrDeposed)
	}
	return FenceEpoch(ctx, tx, e.name, epoch)
}

// FenceEpoch is Fence for a given instance and epoch. A fence that passes
// records the apply in learnsync_applies, in tx: the row exists only if tx
// commits.
func FenceEpoch(ctx context.Context, tx *sql.Tx, instance string, epoch int64) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM learnsync_lease
		WHERE id = 1 AND instance = $1 AND epoch = $2 AND expires_at > clock_timestamp() FOR SHARE`,
		instance, epoch).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("fence: epoch %d: %w", epoch, ErrDeposed)
	}
	if err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO learnsync_applies (epoch, instance, at) VALUES ($1, $2, clock_timestamp())`,
		epoch, instance); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	return nil
}

// Instances lists the instances seen within the last three leases, with
// their roles; the leader first, then by name.
func (e *Elector) Instances(ctx context.Context) ([]Instance, error) {
	rows, err := e.db.QueryContext(ctx, `
		SELECT i.instance, i.version, i.started_at, i.seen_at,
			COALESCE(l.instance = i.instance AND l.expires_at > now(), false)
		FROM learnsync_instances i LEFT JOIN learnsync_lease l ON l.id = 1
		WHERE i.seen_at > now() - $1 * interval '1 millisecond'
		ORDER BY 5 DESC, i.instance`, ms(3*e.lease))
	if err != nil {
		return nil, fmt.Errorf("read the instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		var in Instance
		var leader bool
		if err := rows.Scan(&in.Instance, &in.Version, &in.StartedAt, &in.SeenAt, &leader); err != nil {
			return nil, fmt.Errorf("read the instances: %w", err)
		}
		in.Role = RoleStandby
		if leader {
			in.Role = RoleLeader
		}
		in.StartedAt, in.SeenAt = in.StartedAt.UTC(), in.SeenAt.UTC()
		out = append(out, in)
	}
	return out, rows.Err()
}

// Term is one leader's term, as learnsync_terms keeps it.
type Term struct {
	Epoch     int64
	Instance  string
	Version   string
	StartedAt time.Time
	// HeldUntil is when the lease of the term's last renewal ended (or
	// when the leader gave it up).
	HeldUntil time.Time
}

// Terms reads every term, oldest first.
func Terms(ctx context.Context, db *sql.DB) ([]Term, error) {
	rows, err := db.QueryContext(ctx, `SELECT epoch, instance, version, started_at, held_until FROM learnsync_terms ORDER BY epoch`)
	if err != nil {
		return nil, fmt.Errorf("read the terms: %w", err)
	}
	defer rows.Close()
	var out []Term
	for rows.Next() {
		var t Term
		if err := rows.Scan(&t.Epoch, &t.Instance, &t.Version, &t.StartedAt, &t.HeldUntil); err != nil {
			return nil, fmt.Errorf("read the terms: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Apply is one apply transaction the fence let commit.
type Apply struct {
	Epoch    int64
	Instance string
	// At is when it passed the fence, just before its COMMIT.
	At time.Time
}

// Applies reads the recorded applies, oldest first.
func Applies(ctx context.Context, db *sql.DB) ([]Apply, error) {
	rows, err := db.QueryContext(ctx, `SELECT epoch, instance, at FROM learnsync_applies ORDER BY at`)
	if err != nil {
		return nil, fmt.Errorf("read the applies: %w", err)
	}
	defer rows.Close()
	var out []Apply
	for rows.Next() {
		var a Apply
		if err := rows.Scan(&a.Epoch, &a.Instance, &a.At); err != nil {
			return nil, fmt.Errorf("read the applies: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
