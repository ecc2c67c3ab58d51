package scheduler

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Spec is a parsed schedule line. The zero Spec never fires.
type Spec struct {
	Line     string         // the line as it reads back: normalised, no trailing newline, comment kept
	Schedule cron.Schedule  // its Next follows the daylight-saving rules of the package doc
	Location *time.Location // from a TZ= or CRON_TZ= prefix; UTC by default
	Catchup  bool           // the line's comment is exactly "catchup"
}

// Next returns the first tick strictly after t, in UTC, or the zero time if
// there is none.
func (s Spec) Next(t time.Time) time.Time {
	if s.Schedule == nil {
		return time.Time{}
	}
	n := s.Schedule.Next(t)
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// Missed counts the ticks in (from, to], stopping at limit, so a years-long
// gap costs at most limit steps. A limit of 0 or less counts nothing.
func (s Spec) Missed(from, to time.Time, limit int) int {
	n := 0
	for t := s.Next(from); n < limit && !t.IsZero() && !t.After(to); t = s.Next(t) {
		n++
	}
	return n
}
