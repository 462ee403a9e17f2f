package directory

import (
	"github.com/learnsync/learnsync/internal/pgtest"

	"errors"
	"strings"
	"testing"
	"time"
)

func TestLockIsExclusiveAndReleased(t *testing.T) { eachBackend(t, testLockIsExclusiveAndReleased) }

func testLockIsExclusiveAndReleased(t *testing.T) {
	ctx := t.Context()
	var a, b *Store
	if onPostgres(t) {
		dsn := pgtest.DSN(t)
		a, b = openDSN(t, dsn), openDSN(t, dsn)
	} else {
		path := t.TempDir() + "/d.db"
		a, b = openAt(t, path, Options{}), openAt(t, path, Options{})
	}

	unlock, err := a.Lock(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = b.Lock(ctx, 300*time.Millisecond)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second lock = %v, want ErrLocked naming the holder's pid", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("gave up after %v, want to wait 300ms", waited)
	}
	// Released: the waiter gets it.
	go func() { time.Sleep(100 * time.Millisecond); unlock() }()
	unlock2, err := b.Lock(ctx, 5*time.Second)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}

// openDSN opens the PostgreSQL directory dsn, closed after the test.
func openDSN(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := OpenPostgres(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
