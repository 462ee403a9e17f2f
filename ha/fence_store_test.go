package ha_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/ha"
	"github.com/learnsync/learnsync/ha/hatest"
	"github.com/learnsync/learnsync/reconcile"
)

// TestFenceOnPostgresStore: the PostgreSQL directory with the election's
// fence records a run only while its instance leads; a refused run leaves
// nothing behind.
func TestFenceOnPostgresStore(t *testing.T) {
	dsn := hatest.Database(t)
	ctx := t.Context()
	var el *ha.Elector
	st, err := directory.OpenPostgres(ctx, dsn, directory.Options{Fence: func(ctx context.Context, tx *sql.Tx) error { return el.Fence(ctx, tx) }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if el, err = ha.New(ctx, st.DB(), ha.Options{Instance: "a", Lease: time.Second}); err != nil {
		t.Fatal(err)
	}
	run := func() error {
		return st.RecordRun(ctx, &reconcile.Run{Trigger: reconcile.TriggerSchedule, StartedAt: time.Now(), EndedAt: time.Now(), Result: reconcile.ResultFailed})
	}
	if err := run(); !errors.Is(err, ha.ErrDeposed) {
		t.Fatalf("a standby's run record: %v, want ErrDeposed", err)
	}
	if rs, err := st.Runs(ctx, 10); err != nil || len(rs) != 0 {
		t.Fatalf("runs after a refused record: %d, %v", len(rs), err)
	}
	done := make(chan struct{})
	cctx, stop := context.WithCancel(ctx)
	go el.Campaign(cctx, func(lctx context.Context, _ int64) {
		if err := run(); err != nil {
			t.Errorf("the leader's run record: %v", err)
		}
		close(done)
		<-lctx.Done()
	})
	<-done
	stop()
	if rs, err := st.Runs(ctx, 10); err != nil || len(rs) != 1 {
		t.Fatalf("runs after the leader's record: %d, %v", len(rs), err)
	}
}
