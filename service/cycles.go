package service

import (
	"sync"
	"time"

	"github.com/learnsync/learnsync/reconcile"
)

// cycleLog is what the service knows of its own cycles. A cycle with
// nothing to do records no run (reconcile.Outcome.NoChange), so the run
// history alone does not show that it happened: /status shows the last
// cycle from here.
type cycleLog struct {
	mu   sync.Mutex
	n    int
	last reconcile.Run
	// observe, if set, is called with every cycle's run (tests).
	observe func(reconcile.Run)
}

// ended counts a cycle that was carried out, whatever its result.
func (l *cycleLog) ended(out *reconcile.Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	l.last = *out.Run
	if l.observe != nil {
		l.observe(l.last)
	}
}

// state returns how many cycles ended and the last one (ok false: none).
func (l *cycleLog) state() (n int, last reconcile.Run, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.last, l.n > 0
}

// CycleReport is the service's last cycle, recorded or not.
type CycleReport struct {
	EndedAt   time.Time `json:"ended_at"`
	Trigger   string    `json:"trigger"`
	Reconcile string    `json:"reconcile"`
	Result    string    `json:"result"`
	// Run is the id of its run record; 0 when it had nothing to do and
	// recorded nothing.
	Run int64 `json:"run"`
}
