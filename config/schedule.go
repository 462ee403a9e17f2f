package config

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a parsed schedule or full_sync value: a cron schedule, or an
// "@every" interval taken exactly. Load and Parse fill in every source's
// schedules; the zero Schedule is not set.
type Schedule struct {
	spec     string
	cron     cron.Schedule // nil for an interval
	interval time.Duration
}

// cronParser accepts five-field cron specs and descriptors (@every 5m, @daily).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a schedule or full_sync value: a five-field cron
// spec (in the machine's local time zone) or a descriptor (@daily,
// @every 5m). "@every <duration>" is taken as written: robfig/cron rounds it
// down to whole seconds (and up to one second), which makes short intervals
// in tests impossible and aligns ticks to the wall clock's seconds.
func ParseSchedule(spec string) (Schedule, error) {
	c, err := cronParser.Parse(spec)
	if err != nil {
		return Schedule{}, err
	}
	if rest, ok := strings.CutPrefix(spec, "@every "); ok {
		if d, err := time.ParseDuration(strings.TrimSpace(rest)); err == nil && d > 0 {
			return Schedule{spec: spec, interval: d}, nil
		}
	}
	return Schedule{spec: spec, cron: c}, nil
}

// MustParseSchedule is ParseSchedule for specs known to be good; it panics
// on a bad one.
func MustParseSchedule(spec string) Schedule {
	s, err := ParseSchedule(spec)
	if err != nil {
		panic("config: bad schedule " + spec + ": " + err.Error())
	}
	return s
}

// unparsedSchedule holds a spec that validation has yet to parse.
func unparsedSchedule(spec string) Schedule { return Schedule{spec: spec} }

// Next returns when the schedule is due after t. The zero Schedule is never
// due: it returns the zero time.
func (s Schedule) Next(t time.Time) time.Time {
	switch {
	case s.interval > 0:
		return t.Add(s.interval)
	case s.cron != nil:
		return s.cron.Next(t)
	}
	return time.Time{}
}

// String returns the spec as written in the configuration.
func (s Schedule) String() string { return s.spec }

// IsZero reports whether the schedule is not set (not parsed).
func (s Schedule) IsZero() bool { return s.cron == nil && s.interval == 0 }

// Equal reports whether two schedules were parsed from the same spec.
func (s Schedule) Equal(o Schedule) bool { return s.spec == o.spec && s.IsZero() == o.IsZero() }
