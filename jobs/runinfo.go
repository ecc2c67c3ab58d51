package jobs

import (
	"slices"
	"time"

	"github.com/jobfs/jobfs/exec"
)

// Usage is what a step used (or a run's steps together), from the step's
// cgroup. A nil field is unknown (no cgroup, or no such counter): a reader
// must never take it for 0.
type Usage struct {
	CPUNanos   *uint64 `json:"cpu_ns,omitempty"`
	MemoryPeak *uint64 `json:"memory_peak_bytes,omitempty"`
	IORead     *uint64 `json:"io_read_bytes,omitempty"`
	IOWrite    *uint64 `json:"io_write_bytes,omitempty"`
	PidsPeak   *uint64 `json:"pids_peak,omitempty"`
}

// usageOf keeps what exec measured; nil when it measured nothing, so a
// record without cgroups carries no empty object.
func usageOf(u exec.Usage) *Usage {
	if u.CPUNanos == nil && u.MemoryPeak == nil && u.IORead == nil && u.IOWrite == nil && u.PidsPeak == nil {
		return nil
	}
	return &Usage{CPUNanos: u.CPUNanos, MemoryPeak: u.MemoryPeak, IORead: u.IORead, IOWrite: u.IOWrite, PidsPeak: u.PidsPeak}
}

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
// does not overlap it.
func concurrentPeak(steps []Step, field func(*Usage) *uint64) *uint64 {
	type edge struct {
		at    time.Time
		start bool
		v     uint64
	}
	var edges []edge
	for _, s := range steps {
		if s.Usage == nil || field(s.Usage) == nil || s.StartedAt.IsZero() {
			continue
		}
		end := s.EndedAt
		if end.Before(s.StartedAt) {
			end = s.StartedAt
		}
		v := *field(s.Usage)
		edges = append(edges, edge{s.StartedAt, true, v}, edge{end, false, v})
	}
	if len(edges) == 0 {
		return nil
	}
	slices.SortStableFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if a.start == b.start {
			return 0
		}
		if a.start {
			return 1 // ends first
		}
		return -1
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

// Now is the Manager's clock (injected in tests), for what is computed at
// read time such as an active run's duration.
func (m *Manager) Now() time.Time { return m.now().UTC() }

// Trigger starts a run of job id with payload p (see trigger); a manual
// trigger through it names no user.
func (m *Manager) Trigger(jobID string, p []byte, t Trigger) (uint64, error) {
	by := ""
	if t == Schedule {
		by = string(Schedule)
	}
	return m.trigger(jobID, p, t, by)
}

// TriggerAs is Trigger for a write by the user uid, whom the run records
// as triggered_by (the user name, or the uid where it has none).
func (m *Manager) TriggerAs(jobID string, p []byte, t Trigger, uid uint32) (uint64, error) {
	return m.trigger(jobID, p, t, UserName(uid))
}
