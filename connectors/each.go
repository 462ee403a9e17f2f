package connectors

import (
	"context"
	"sync"
)

// Each calls fn for every id, on at most workers goroutines at once (a
// rate budget paces them; more would only queue). The first error cancels
// the context the other calls get, skips the ids not started yet, and is
// returned. Each does not report the cancellation of ctx itself: callers
// check ctx.Err() afterwards.
func Each(ctx context.Context, workers int, ids []string, fn func(ctx context.Context, id string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan string)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range max(min(workers, len(ids)), 1) {
		wg.Go(func() {
			for id := range work {
				if err := fn(ctx, id); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return first
}
