package ha

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/learnsync/learnsync/ha/hatest"
)

func newElector(t *testing.T, db *sql.DB, name string, lease time.Duration) *Elector {
	t.Helper()
	e, err := New(t.Context(), db, Options{Instance: name, Lease: lease, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// expire ends the current lease at once, as if its holder had died long ago.
func expire(t *testing.T, db *sql.DB) {
	t.Helper()
	if _, err := db.Exec(`UPDATE learnsync_lease SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
}

// TestAcquireRace has two instances try to take an expired lease at the
// same moment, many times: each time exactly one wins, and the epoch grows
// by one.
func TestAcquireRace(t *testing.T) {
	db := hatest.Open(t, hatest.Database(t))
	a, b := newElector(t, db, "a", time.Minute), newElector(t, db, "b", time.Minute)
	ctx := t.Context()
	var last int64
	for round := range 30 {
		var wg sync.WaitGroup
		epochs := make([]int64, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, e := range []*Elector{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				epochs[i], errs[i] = e.tryAcquire(ctx)
			}()
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		won := 0
		for _, ep := range epochs {
			if ep > 0 {
				won++
				if ep != last+1 {
					t.Fatalf("round %d: epoch %d after %d", round, ep, last)
				}
				last = ep
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d instances took the lease (epochs %v), want 1", round, won, epochs)
		}
		expire(t, db)
	}
	terms, err := Terms(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(terms) != 30 || terms[29].Epoch != 30 {
		t.Fatalf("terms: %d, last %+v; want 30 terms", len(terms), terms[len(terms)-1])
	}
}

// TestLeaseExpiry: a live lease is not taken; an expired one is, with the
// next epoch; the old holder can no longer renew it nor commit behind its
// fence.
func TestLeaseExpiry(t *testing.T) {
	db := hatest.Open(t, hatest.Database(t))
	ctx := t.Context()
	lease := 400 * time.Millisecond
	a, b := newElector(t, db, "a", lease), newElector(t, db, "b", lease)
	ea, err := a.tryAcquire(ctx)
	if err != nil || ea != 1 {
		t.Fatalf("a: epoch %d, %v; want 1", ea, err)
	}
	if eb, err := b.tryAcquire(ctx); err != nil || eb != 0 {
		t.Fatalf("b took a live lease: epoch %d, %v", eb, err)
	}
	if st := b.State(); st.Role != RoleStandby || st.Leader != "a" || st.Epoch != 1 || !st.Live {
		t.Fatalf("b's state: %+v", st)
	}
	if ok, err := a.renew(ctx, ea); !ok || err != nil {
		t.Fatalf("a cannot renew its own lease: %v %v", ok, err)
	}
	time.Sleep(lease + 100*time.Millisecond)
	if ok, err := a.renew(ctx, ea); ok || err != nil {
		t.Fatalf("a renewed an expired lease: %v %v", ok, err)
	}
	eb, err := b.tryAcquire(ctx)
	if err != nil || eb != 2 {
		t.Fatalf("b: epoch %d, %v; want 2", eb, err)
	}
	if ok, err := a.renew(ctx, ea); ok || err != nil {
		t.Fatalf("a renewed b's lease: %v %v", ok, err)
	}
	terms, err := Terms(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(terms) != 2 || terms[0].Instance != "a" || terms[1].Instance != "b" || terms[1].StartedAt.Before(terms[0].HeldUntil) {
		t.Fatalf("terms overlap or are wrong: %+v", terms)
	}
}

// TestFenceRejectsDeposedEpoch: an apply of the current leader commits; one
// of a deposed leader does not, whether it began before or after the
// takeover; and a takeover waits for an apply that passed its fence.
func TestFenceRejectsDeposedEpoch(t *testing.T) {
	dsn := hatest.Database(t)
	db := hatest.Open(t, dsn)
	ctx := t.Context()
	if _, err := db.Exec(`CREATE TABLE applied (n INT)`); err != nil {
		t.Fatal(err)
	}
	lease := 500 * time.Millisecond
	a, b := newElector(t, db, "a", lease), newElector(t, db, "b", lease)
	// apply inserts n, waits before, fences, waits after, commits.
	apply := func(e *Elector, n int, before, after time.Duration) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.Exec(`INSERT INTO applied VALUES ($1)`, n); err != nil {
			t.Fatal(err)
		}
		time.Sleep(before)
		if err := e.Fence(ctx, tx); err != nil {
			return err
		}
		time.Sleep(after)
		return tx.Commit()
	}
	if err := apply(a, 1, 0, 0); !errors.Is(err, ErrDeposed) {
		t.Fatalf("an apply without the lease: %v, want ErrDeposed", err)
	}
	if _, err := a.tryAcquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := apply(a, 2, 0, 0); err != nil {
		t.Fatalf("the leader's apply: %v", err)
	}

	// a passes its fence while it leads, then stalls past its lease: b's
	// takeover must wait for a's commit.
	var committed atomic.Int64
	done := make(chan error, 1)
	go func() {
		err := apply(a, 3, 0, lease+200*time.Millisecond)
		committed.Store(time.Now().UnixNano())
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	var took int64
	for took == 0 {
		ep, err := b.tryAcquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		took = ep
		if took == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	acquired := time.Now().UnixNano()
	if err := <-done; err != nil {
		t.Fatalf("a's apply that passed its fence while it led: %v", err)
	}
	if acquired < committed.Load()-int64(20*time.Millisecond) {
		t.Fatalf("b took over before a's fenced apply committed")
	}

	// a wakes up deposed: its fence (epoch 1) refuses, nothing commits.
	a.mu.Lock()
	a.held = 1
	a.mu.Unlock()
	if err := apply(a, 4, 0, 0); !errors.Is(err, ErrDeposed) {
		t.Fatalf("the deposed leader's apply: %v, want ErrDeposed", err)
	}
	if err := apply(b, 5, 0, 0); err != nil {
		t.Fatalf("the new leader's apply: %v", err)
	}
	var got []int
	rows, err := db.Query(`SELECT n FROM applied ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n int
		rows.Scan(&n)
		got = append(got, n)
	}
	if len(got) != 3 || got[0] != 2 || got[1] != 3 || got[2] != 5 {
		t.Fatalf("applied %v, want [2 3 5]", got)
	}
}

// TestCampaignStepDownAndTakeover runs two campaigns: one leads at a time;
// a leader whose lease is taken away steps down (its context ends) within
// a lease; a leader that stops gives the lease up, and the other takes
// over well within two leases.
func TestCampaignStepDownAndTakeover(t *testing.T) {
	db := hatest.Open(t, hatest.Database(t))
	lease := 600 * time.Millisecond
	a, b := newElector(t, db, "a", lease), newElector(t, db, "b", lease)
	var leading atomic.Int32
	var overlap atomic.Bool
	led := make(chan string, 10)
	ended := make(chan string, 10)
	lead := func(name string) func(context.Context, int64) {
		return func(ctx context.Context, _ int64) {
			if leading.Add(1) > 1 {
				overlap.Store(true)
			}
			led <- name
			<-ctx.Done()
			leading.Add(-1)
			ended <- name
		}
	}
	actx, stopA := context.WithCancel(t.Context())
	defer stopA()
	campaigned := make(chan struct{})
	go func() { defer close(campaigned); a.Campaign(actx, lead("a")) }()
	if got := recv(t, led, 2*lease); got != "a" {
		t.Fatalf("first leader %s", got)
	}
	bctx, stopB := context.WithCancel(t.Context())
	defer stopB()
	go b.Campaign(bctx, lead("b"))

	// Take the lease away from a behind its back: it must step down.
	if _, err := db.Exec(`UPDATE learnsync_lease SET instance = 'x', epoch = epoch + 1, expires_at = now() + interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got := recv(t, ended, 2*lease); got != "a" {
		t.Fatalf("%s stepped down", got)
	}
	if took := time.Since(start); took > lease {
		t.Fatalf("a stepped down after %v, want within the lease %v", took, lease)
	}
	if st := a.State(); st.Role != RoleStandby {
		t.Fatalf("a's role after stepping down: %s", st.Role)
	}
	expire(t, db)
	winner := recv(t, led, 2*lease)
	// The winner stops: it gives the lease up and the other takes over.
	start = time.Now()
	if winner == "a" {
		stopA()
		<-campaigned
	} else {
		stopB()
	}
	recv(t, ended, lease)
	if next := recv(t, led, 2*lease); next == winner {
		t.Fatalf("%s led again after it stopped", next)
	}
	if took := time.Since(start); took > lease {
		t.Fatalf("takeover after a clean stop took %v, want well within the lease %v", took, lease)
	}
	if overlap.Load() {
		t.Fatal("two instances led at once")
	}
	if a.Changes() == 0 || b.Changes() == 0 {
		t.Fatalf("leader changes: a %d, b %d", a.Changes(), b.Changes())
	}
}

// TestWake: a wake from one instance reaches another's listener.
func TestWake(t *testing.T) {
	db := hatest.Open(t, hatest.Database(t))
	a, b := newElector(t, db, "a", time.Second), newElector(t, db, "b", time.Second)
	ready := make(chan string, 1)
	woken := make(chan string, 1)
	go a.Listen(t.Context(), func() { ready <- "" }, func(s string) { woken <- s })
	recv(t, ready, 5*time.Second)
	if err := b.Wake(t.Context(), "hr-push"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, woken, 5*time.Second); got != "hr-push" {
		t.Fatalf("woken for %q", got)
	}
}

// TestInstances: every campaigning instance is listed with its version
// and role, the leader first.
func TestInstances(t *testing.T) {
	db := hatest.Open(t, hatest.Database(t))
	a, err := New(t.Context(), db, Options{Instance: "a", Lease: time.Second, Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(t.Context(), db, Options{Instance: "b", Lease: time.Second, Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.tryAcquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.heartbeat(t.Context())
	b.heartbeat(t.Context())
	got, err := a.Instances(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Instance != "b" || got[0].Role != RoleLeader || got[0].Version != "v2" ||
		got[1].Instance != "a" || got[1].Role != RoleStandby || got[1].Version != "v1" {
		t.Fatalf("instances: %+v", got)
	}
}

func recv[T any](t *testing.T, c <-chan T, timeout time.Duration) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(timeout):
		var zero T
		t.Fatalf("nothing within %v", timeout)
		return zero
	}
}
