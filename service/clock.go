package service

import (
	"strings"
	"time"

	"github.com/learnsync/learnsync/config"
)

// Clock is the service's time. Tests replace it to drive the schedules
// without waiting for them.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a stoppable one-shot timer, like time.Timer.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// Schedule says when a source's next fetch is due after a given time.
type Schedule interface {
	Next(time.Time) time.Time
}

// every is an "@every" schedule taken exactly.
type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

// ParseSchedule parses a schedule or full_sync value. "@every <duration>"
// is taken as written: robfig/cron rounds it down to whole seconds (and up
// to one second), which makes short intervals in tests impossible and
// aligns ticks to the wall clock's seconds. Everything else goes to
// config.ParseSchedule (5-field cron specs and descriptors).
func ParseSchedule(spec string) (Schedule, error) {
	if rest, ok := strings.CutPrefix(spec, "@every "); ok {
		if d, err := time.ParseDuration(strings.TrimSpace(rest)); err == nil && d > 0 {
			return every(d), nil
		}
	}
	return config.ParseSchedule(spec)
}
