package reconcile

import (
	"context"
	"sync"
)

// A StagedLoader reads the directory in two parts, in one snapshot: first
// the people, their identities, the groups and the pools, which Desire may
// need (to settle duplicates); then the memberships and the seats, which
// only Diff needs. finish(true) reads the second part into st; finish(false)
// only ends the snapshot. Exactly one call of finish must follow a nil
// error.
type StagedLoader interface {
	LoadStateStaged(ctx context.Context) (st *State, finish func(read bool) error, err error)
}

// stateRead is a full run's read of the directory, started with the
// fetches. A large directory is read in two parts: the second waits until
// the run asks for the whole state, once Desire is done and the parsed
// sources are garbage, so that millions of memberships and seats are not
// in memory with them (docs/PERFORMANCE.md, "Round six").
type stateRead struct {
	first, full *promise[*State]
	gate        chan bool
	once        sync.Once
}

// readState starts reading the directory of store; a directory of large
// people or more waits for its second part.
func readState(ctx context.Context, store Store, large int) *stateRead {
	r := &stateRead{gate: make(chan bool, 1)}
	sl, ok := store.(StagedLoader)
	if !ok || fenced(store) {
		// Under high availability a transaction idle longer than the
		// lease is ended by the server: read the directory at once.
		r.full = async(func() (*State, error) { return store.LoadState(ctx) })
		r.first = r.full
		return r
	}
	r.first = newPromise[*State]()
	r.full = newPromise[*State]()
	go func() {
		st, finish, err := sl.LoadStateStaged(ctx)
		r.first.resolve(st, err)
		if err != nil {
			r.full.resolve(nil, err)
			return
		}
		read := true
		if len(st.People) >= large {
			read = <-r.gate
		}
		err = finish(read)
		r.full.resolve(st, err)
	}()
	return r
}

// partial returns the state as soon as its people and identities are read
// (the whole state from a store that reads it at once).
func (r *stateRead) partial() (*State, error) { return r.first.wait() }

// wait returns the whole state, reading its second part now if it waits.
func (r *stateRead) wait() (*State, error) {
	r.proceed(true)
	return r.full.wait()
}

// release ends the read without its second part, for a run that ends
// before its plan, and waits until the snapshot is gone.
func (r *stateRead) release() {
	r.proceed(false)
	r.full.wait()
}

func (r *stateRead) proceed(read bool) {
	r.once.Do(func() { r.gate <- read })
}

// fenced says whether store's applies are fenced (high availability).
func fenced(store Store) bool {
	f, ok := store.(interface{ Fenced() bool })
	return ok && f.Fenced()
}
