package domain

import (
	"slices"
	"time"
)

// SumUsage is what steps used together: CPU and I/O are summed; a peak is
// the largest sum of the peaks of steps that ran at the same time (for
// steps in sequence, the largest step's), an upper bound of the run's true
// peak. A field is unknown when no step knows it.
func SumUsage(steps []Step) Usage {
	var out Usage
	add := func(dst **uint64, v *uint64) {
		if v == nil {
			return
		}
		if *dst == nil {
			*dst = new(uint64)
		}
		**dst += *v
	}
	for _, s := range steps {
		if s.Usage == nil {
			continue
		}
		add(&out.CPUNanos, s.Usage.CPUNanos)
		add(&out.IORead, s.Usage.IORead)
		add(&out.IOWrite, s.Usage.IOWrite)
	}
	out.MemoryPeak = concurrentPeak(steps, func(u *Usage) *uint64 { return u.MemoryPeak })
	out.PidsPeak = concurrentPeak(steps, func(u *Usage) *uint64 { return u.PidsPeak })
	return out
}

// concurrentPeak sweeps the steps' intervals: the largest sum of field
// over steps running at one moment. A step ending when another starts
// does not overlap it; a step that took no time (or whose recorded start
// is not before its end) counts at its moment.
func concurrentPeak(steps []Step, field func(*Usage) *uint64) *uint64 {
	// rank orders edges at one moment: ends of steps that took time, then
	// starts, then ends of steps that took none (after their own start).
	type edge struct {
		at    time.Time
		start bool
		rank  int
		v     uint64
	}
	var edges []edge
	for _, s := range steps {
		if s.Usage == nil || field(s.Usage) == nil || s.StartedAt.IsZero() {
			continue
		}
		end, endRank := s.EndedAt, 0
		if !end.After(s.StartedAt) {
			end, endRank = s.StartedAt, 2
		}
		v := *field(s.Usage)
		edges = append(edges, edge{s.StartedAt, true, 1, v}, edge{end, false, endRank, v})
	}
	if len(edges) == 0 {
		return nil
	}
	slices.SortStableFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.rank - b.rank
	})
	var cur, peak uint64
	for _, e := range edges {
		if e.start {
			cur += e.v
			peak = max(peak, cur)
		} else {
			cur -= e.v
		}
	}
	return &peak
}

// TotalUsage is the run's usage: recorded at its end, or summed over the
// steps ended so far while it is active.
func (r Run) TotalUsage() Usage {
	if r.Usage != nil {
		return *r.Usage
	}
	return SumUsage(r.Steps)
}

// Duration is how long the run has been running: from its start to its
// end, or to now while it runs; ok is false before it started.
func (r Run) Duration(now time.Time) (d time.Duration, ok bool) {
	return elapsed(r.StartedAt, r.EndedAt, now)
}

// Duration is Run.Duration for one step.
func (s Step) Duration(now time.Time) (d time.Duration, ok bool) {
	return elapsed(s.StartedAt, s.EndedAt, now)
}

func elapsed(start, end, now time.Time) (time.Duration, bool) {
	if start.IsZero() {
		return 0, false
	}
	if end.IsZero() {
		end = now
	}
	return max(end.Sub(start), 0), true
}

// Who says who started the run: a user name, "schedule", or "unknown" for
// a run recorded before jobfs kept it.
func (r Run) Who() string {
	switch {
	case r.TriggeredBy != "":
		return r.TriggeredBy
	case r.Trigger == Schedule:
		return string(Schedule)
	}
	return "unknown"
}
