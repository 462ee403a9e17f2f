package directory

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLockIsExclusiveAndReleased(t *testing.T) {
	ctx := t.Context()
	path := t.TempDir() + "/d.db"
	a := openAt(t, path, Options{})
	b := openAt(t, path, Options{})

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
