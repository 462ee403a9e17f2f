package reconcile

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// stagedStore is a StagedLoader whose directory has people people.
type stagedStore struct {
	Store
	people   int
	finished atomic.Int32 // 0: not yet; 1: finish(true); 2: finish(false)
	whole    atomic.Int32
}

// LoadState reads the directory at once (whole counts the calls).
func (s *stagedStore) LoadState(context.Context) (*State, error) {
	s.whole.Add(1)
	return NewState(), nil
}

func (s *stagedStore) LoadStateStaged(context.Context) (*State, func(bool) error, error) {
	st := NewState()
	for i := range s.people {
		st.People[int64(i+1)] = &Person{ID: int64(i + 1)}
	}
	return st, func(read bool) error {
		if read {
			st.Members[1] = []int64{1}
			s.finished.Store(1)
		} else {
			s.finished.Store(2)
		}
		return nil
	}, nil
}

func TestStateReadWaitsForTheRestOfALargeDirectory(t *testing.T) {
	s := &stagedStore{people: defaultLargeRun}
	r := readState(t.Context(), s, defaultLargeRun)
	if st, err := r.partial(); err != nil || len(st.People) != defaultLargeRun {
		t.Fatalf("partial = %d people, %v", len(st.People), err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := s.finished.Load(); got != 0 {
		t.Fatalf("a large directory's second part was read (finish %d) before the run asked for it", got)
	}
	st, err := r.wait()
	if err != nil || s.finished.Load() != 1 || len(st.Members) != 1 {
		t.Fatalf("wait: finish %d, %d members, %v; want the second part read", s.finished.Load(), len(st.Members), err)
	}
	r.release() // after wait: nothing more to do
	if s.finished.Load() != 1 {
		t.Errorf("release after wait changed the read")
	}
}

func TestStateReadReleasedEndsWithoutTheRest(t *testing.T) {
	s := &stagedStore{people: defaultLargeRun}
	r := readState(t.Context(), s, defaultLargeRun)
	r.release()
	if got := s.finished.Load(); got != 2 {
		t.Errorf("finish = %d after release, want finish(false)", got)
	}
}

func TestStateReadOfASmallDirectoryIsWhole(t *testing.T) {
	s := &stagedStore{people: 3}
	r := readState(t.Context(), s, defaultLargeRun)
	st, err := r.partial()
	if err != nil {
		t.Fatal(err)
	}
	r.full.wait() // read through without being asked
	if s.finished.Load() != 1 || len(st.Members) != 1 {
		t.Errorf("a small directory: finish %d, %d members; want it read whole at once", s.finished.Load(), len(st.Members))
	}
	r.release()
}

// fencedStagedStore is a stagedStore under high availability.
type fencedStagedStore struct{ *stagedStore }

func (fencedStagedStore) Fenced() bool { return true }

func TestStateReadUnderHAIsWhole(t *testing.T) {
	s := &stagedStore{people: defaultLargeRun}
	r := readState(t.Context(), fencedStagedStore{s}, defaultLargeRun)
	if _, err := r.full.wait(); err != nil {
		t.Fatal(err)
	}
	if s.finished.Load() != 0 || s.whole.Load() != 1 {
		t.Errorf("a fenced store: finish %d, %d whole reads; want one whole read: a snapshot in two parts would idle through Desire",
			s.finished.Load(), s.whole.Load())
	}
}
