package directory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrLocked is returned when another process holds the directory's run lock
// for longer than the caller is willing to wait.
var ErrLocked = errors.New("another learnsync is running on this directory")

// LockPath is the lock file next to the database ("" on PostgreSQL, whose
// run lock is an advisory lock).
func (s *Store) LockPath() string {
	if s.driver == DriverPostgres {
		return ""
	}
	return s.path + ".lock"
}

// Lock takes the directory's run lock: one fetch-plan-apply cycle at a time
// per database, across processes. SQLite alone would serialize the writes,
// but two runs that planned against the same state would then both apply.
// Lock waits up to wait (polling), then returns ErrLocked naming the holder.
// The lock is released by the returned func, or by the kernel when the
// process dies, so a crash never leaves it stuck.
//
// On PostgreSQL the lock is a session advisory lock (lockPostgres).
func (s *Store) Lock(ctx context.Context, wait time.Duration) (unlock func(), err error) {
	if s.driver == DriverPostgres {
		return s.lockPostgres(ctx, wait)
	}
	f, err := os.OpenFile(s.LockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", s.LockPath(), err)
		}
		if time.Now().After(deadline) {
			holder := readHolder(s.LockPath())
			f.Close()
			return nil, fmt.Errorf("%w (%s holds %s); try again when it has finished", ErrLocked, holder, s.LockPath())
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	// Say who holds it, for the message another process will print.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(fmt.Sprintf("pid %d since %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))), 0)
	}
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func readHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "another process"
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "another process"
	}
	if _, err := strconv.Atoi(s); err == nil {
		return "pid " + s
	}
	return s
}
