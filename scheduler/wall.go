package scheduler

import (
	"time"

	"github.com/robfig/cron/v3"
)

// allHours are the hour bits of a schedule that matches every hour.
const allHours = 1<<24 - 1

// maxSkips bounds wallSchedule.Next's search past wall times already passed
// in a repeated hour (at most 60 a minute-granular hour, twice for a 2h shift).
const maxSkips = 1000

// zoned returns s as a schedule in loc. A schedule that matches every hour
// (*/15 * * * *) runs on real time: robfig/cron steps through a
// daylight-saving change by adding real minutes, which is right for it. A
// schedule at fixed hours (0 9 * * *, 30 2 * * *, @daily) runs on the wall
// clock instead: see wallSchedule.
func zoned(s *cron.SpecSchedule, loc *time.Location) cron.Schedule {
	if s.Hour&allHours == allHours || loc == time.UTC {
		c := *s
		c.Location = loc
		return &c
	}
	w := *s
	w.Location = time.UTC
	return wallSchedule{wall: &w, loc: loc}
}

// wallSchedule fires once at each wall-clock time in loc that its fields
// match. A time the clock skips (02:30 on the night it springs forward) fires
// when the clock jumps past it; a time the clock shows twice (02:30 on the
// night it falls back) fires the first time only. Plain robfig/cron would skip
// the first and fire the second twice.
type wallSchedule struct {
	wall *cron.SpecSchedule // the fields, matched against wall-clock times written as UTC
	loc  *time.Location
}

// Next returns the first tick strictly after t.
func (w wallSchedule) Next(t time.Time) time.Time {
	after := wallClock(t, w.loc)
	for range maxSkips {
		nw := w.wall.Next(after)
		if nw.IsZero() {
			return nw
		}
		if r := firstShown(nw, w.loc); r.After(t) {
			return r
		}
		after = nw // shown before t: t is in the second pass of a repeated hour
	}
	return time.Time{}
}

// wallClock returns what the clock in loc shows at t, written as a UTC time.
func wallClock(t time.Time, loc *time.Location) time.Time {
	y, mo, d := t.In(loc).Date()
	h, mi, s := t.In(loc).Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// firstShown returns the first instant at which the clock in loc shows the
// wall time w (written as UTC) or a later one: w itself if it exists (its
// first occurrence if it exists twice), else the end of the gap it falls in.
// It assumes at most one offset change within a day of w.
func firstShown(w time.Time, loc *time.Location) time.Time {
	u := w.Unix()
	before, after := offsetAt(u-86400, loc), offsetAt(u+86400, loc)
	for _, off := range []int64{before, after} { // with before > after, u-before is the earlier
		if offsetAt(u-off, loc) == off {
			return time.Unix(u-off, 0).UTC()
		}
	}
	// A gap: the clock moved from before to after between lo and hi.
	lo, hi := u-after, u-before
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if offsetAt(mid, loc) == after {
			hi = mid
		} else {
			lo = mid
		}
	}
	return time.Unix(hi, 0).UTC()
}

// offsetAt returns loc's offset from UTC, in seconds, at Unix time u.
func offsetAt(u int64, loc *time.Location) int64 {
	_, off := time.Unix(u, 0).In(loc).Zone()
	return int64(off)
}
