package ha

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the LISTEN/NOTIFY channel that wakes the leader: a standby
// that took a SCIM push asks the leader for a run of that source.
const Channel = "learnsync_run"

// Wake asks the leader, wherever it runs, for a run that reconciles source.
// A notification is a wake-up only: the push is already in the directory,
// and a leader that missed it (it was being elected, its listening
// connection broke) reconciles every push source when it listens again.
func (e *Elector) Wake(ctx context.Context, source string) error {
	if _, err := e.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, Channel, source); err != nil {
		return fmt.Errorf("wake the leader: %w", err)
	}
	return nil
}

// Listen calls woken with the source of every Wake, from any instance,
// until ctx ends. It holds one connection of the pool. After a broken
// connection it listens again (every lease/3) and calls listening, since
// wakes may have been missed meanwhile; listening is called the first time
// too.
func (e *Elector) Listen(ctx context.Context, listening func(), woken func(source string)) {
	for ctx.Err() == nil {
		err := e.listenOnce(ctx, listening, woken)
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("listen for wake-ups: the connection broke; listening again", "error", err)
		t := time.NewTimer(e.lease / 3)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (e *Elector) listenOnce(ctx context.Context, listening func(), woken func(string)) error {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := pgxConn(dc)
		if pc == nil {
			return fmt.Errorf("listen: the pool's driver is %T, not pgx", dc)
		}
		if _, err := pc.Exec(ctx, "LISTEN "+Channel); err != nil {
			return errors.Join(err, driver.ErrBadConn)
		}
		listening()
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				// The connection is left listening, or broken: the pool
				// must not hand it out again.
				return errors.Join(err, driver.ErrBadConn)
			}
			woken(n.Payload)
		}
	})
}

// pgxConn is the pgx connection of a database/sql driver connection: the
// pgx driver's own, or the directory's, which wraps it; nil for another
// driver.
func pgxConn(dc any) *pgx.Conn {
	switch c := dc.(type) {
	case interface{ PgxConn() *pgx.Conn }: // the directory's
		return c.PgxConn()
	case interface{ Conn() *pgx.Conn }: // pgx's stdlib.Conn
		return c.Conn()
	}
	return nil
}
