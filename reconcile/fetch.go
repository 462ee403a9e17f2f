package reconcile

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// promise is a value computed in its own goroutine: the one concurrency
// construct of a run.
type promise[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// async runs f in a new goroutine.
func async[T any](f func() (T, error)) *promise[T] {
	p := &promise[T]{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.val, p.err = f()
	}()
	return p
}

// newPromise returns a promise that resolve keeps.
func newPromise[T any]() *promise[T] { return &promise[T]{done: make(chan struct{})} }

// resolve keeps v and err and wakes every waiter. It is called once.
func (p *promise[T]) resolve(v T, err error) {
	p.val, p.err = v, err
	close(p.done)
}

// wait returns what f returned, once it has. It may be called any number of
// times, from any goroutine.
func (p *promise[T]) wait() (T, error) {
	<-p.done
	return p.val, p.err
}

// fetched is the fetch of one source: mode is "" when the run did not fetch
// it.
type fetched struct {
	name   string
	mode   string
	result *connectors.Result
	err    error
	took   time.Duration
	// delta is the full result of a source that reads whole compared with
	// its stored mirror (snapshotDelta), when the fetch did it.
	delta    *connectors.Result
	deltaErr error
	// fresh reports that the store held no row of the source (see
	// snapshotDelta).
	fresh bool
}

// fetchAll fetches every source at once and returns the results in source
// order. A panicking connector counts as a failed fetch. With a prefetcher,
// a source that reads whole has its stored hashes read while it reads.
func (e *Engine) fetchAll(ctx context.Context, cursors map[string]string, opts RunOptions, pf *prefetcher) []fetched {
	pending := make([]*promise[fetched], len(e.Sources))
	for i, src := range e.Sources {
		name := src.Rules.Name
		mode := opts.Fetch[name]
		if mode == FetchNone || connectors.IsPushed(src.Connector) {
			continue
		}
		fctx := ctx
		if pf != nil && readsWhole(src.Connector) {
			fctx = connectors.WithReadingWhole(ctx, func() { pf.start(ctx, name) })
		}
		pending[i] = async(func() (fetched, error) {
			f := fetchOne(fctx, src, mode, cursors[name])
			if p := pf.take(name); p != nil && f.err == nil && f.result.Full {
				// Compared here, while other sources may still fetch: the
				// reconcile sees only the rows that differ.
				f.delta, f.fresh, f.deltaErr = snapshotDelta(ctx, pf.ss, name, f.result, p)
			} else if p != nil {
				p.wait()
			}
			return f, nil
		})
	}
	out := make([]fetched, len(e.Sources))
	for i, p := range pending {
		out[i].name = e.Sources[i].Rules.Name
		if p != nil {
			out[i], _ = p.wait()
		}
	}
	return out
}

// fetchOne fetches one source: incrementally when the mode allows it, the
// connector can and there is a cursor, else fully. A failed fetch is never
// used, even partly.
func fetchOne(ctx context.Context, src Source, mode FetchMode, cursor string) (f fetched) {
	f.name = src.Rules.Name
	inc, canInc := src.Connector.(connectors.Incremental)
	useInc := mode == FetchAuto && canInc && cursor != ""
	f.mode = "full"
	if useInc {
		f.mode = "incremental"
	}
	start := time.Now()
	defer func() {
		f.took = time.Since(start)
		if p := recover(); p != nil {
			f.result = nil
			f.err = fmt.Errorf("connector panicked: %v\n%s", p, debug.Stack())
		}
	}()
	var r *connectors.Result
	var err error
	if useInc {
		r, err = inc.FetchChanges(ctx, cursor)
	} else {
		r, err = src.Connector.FetchAll(ctx)
		if err == nil && r != nil && !r.Full {
			err = errors.New("connector returned a delta from a full fetch")
		}
	}
	if err == nil && r == nil {
		err = errors.New("connector returned no result")
	}
	if err != nil {
		r = nil // a failed fetch is never used, even partly
		err = fmt.Errorf("fetch %s: %w", f.name, err)
	}
	if r != nil && r.Full {
		f.mode = "full"
	}
	f.result, f.err = r, err
	return f
}

// storedHashes are the content hashes a store keeps of a source's mirror
// rows, by external id.
type storedHashes struct{ users, groups map[string]int64 }

// prefetcher reads the stored hashes of the sources that read whole while
// they read: comparing a large snapshot with its mirror then costs only
// the lookups once the fetch is in.
type prefetcher struct {
	ss      ScopedStore
	mu      sync.Mutex
	pending map[string]*promise[storedHashes]
}

func newPrefetcher(ss ScopedStore) *prefetcher {
	return &prefetcher{ss: ss, pending: map[string]*promise[storedHashes]{}}
}

// start begins reading the hashes of source, once.
func (pf *prefetcher) start(ctx context.Context, source string) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if pf.pending[source] == nil {
		pf.pending[source] = async(func() (storedHashes, error) {
			users, groups, err := pf.ss.MirrorHashes(ctx, source)
			return storedHashes{users, groups}, err
		})
	}
}

// take returns the read of source's hashes, or nil when none was started;
// the caller owns what it returns.
func (pf *prefetcher) take(source string) *promise[storedHashes] {
	if pf == nil {
		return nil
	}
	pf.mu.Lock()
	defer pf.mu.Unlock()
	p := pf.pending[source]
	delete(pf.pending, source)
	return p
}

// wait waits for the reads nobody took: nothing of a run goes on once it
// returns.
func (pf *prefetcher) wait() {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	for _, p := range pf.pending {
		p.wait()
	}
}
