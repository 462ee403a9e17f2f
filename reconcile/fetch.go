package reconcile

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
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
}

// fetchAll fetches every source at once and returns the results in source
// order. A panicking connector counts as a failed fetch.
func (e *Engine) fetchAll(ctx context.Context, cursors map[string]string, opts RunOptions) []fetched {
	pending := make([]*promise[fetched], len(e.Sources))
	for i, src := range e.Sources {
		name := src.Rules.Name
		mode := opts.Fetch[name]
		if mode == FetchNone || connectors.IsPushed(src.Connector) {
			continue
		}
		pending[i] = async(func() (fetched, error) { return fetchOne(ctx, src, mode, cursors[name]), nil })
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
