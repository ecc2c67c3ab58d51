package fs

import (
	"strings"
	"time"

	"github.com/jobfs/jobfs/jobs"
)

// The times nodes show. A computed file's mtime (and ctime) is when its
// content last changed, taken from the times of the record it shows; a
// folder's is when an entry was last added or removed. None is older than
// the job: a record's times all follow the job's creation.

// orElse returns t, or def when t is zero.
func orElse(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// runChanged is when a run's status last changed: queued, started, ended.
func runChanged(r jobs.Run) time.Time { return jobs.Latest(r.Queued, r.StartedAt, r.EndedAt) }

// runEnded is when what a run learns at its end (ended_at, exit_code,
// error, wait) was written: its end, or its queueing while it is active
// (the content is empty since).
func runEnded(r jobs.Run) time.Time { return orElse(r.EndedAt, r.Queued) }

// runDirChanged is when a run folder's entries last changed: result is
// added at the end.
func runDirChanged(r jobs.Run) time.Time {
	if r.Result != "" {
		return runEnded(r)
	}
	return r.Queued
}

// planned is when a run's steps were recorded: a pipeline's plan just
// before its first step starts, a single step when it starts; a run that
// ended before any step started recorded them before its end.
func planned(r jobs.Run) time.Time {
	return orElse(r.StartedAt, orElse(r.EndedAt, r.Queued))
}

// stepsChanged is when runs/<id>/steps last gained entries: the plan, and
// the instances of a fan-out, recorded when the step before them ended
// (before any of them started or was skipped).
func stepsChanged(r jobs.Run) time.Time {
	if len(r.Steps) == 0 {
		return r.Queued
	}
	var fan time.Time
	for _, s := range r.Steps {
		if !isInstance(r, s.Label) {
			continue
		}
		if t := orElse(s.StartedAt, s.EndedAt); !t.IsZero() && (fan.IsZero() || t.Before(fan)) {
			fan = t
		}
	}
	return jobs.Latest(planned(r), fan)
}

// isInstance reports whether label names a fan-out instance (render.2)
// of a label that is not itself a step of r.
func isInstance(r jobs.Run, label string) bool {
	base, n, ok := cutLast(label, ".")
	if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
		return false
	}
	_, isStep := r.Step(base)
	return !isStep
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// stepChanged is when a step's status last changed; stepStarted and
// stepEnded date started_at and ended_at, exit_code, error.
func stepChanged(r jobs.Run, s jobs.Step) time.Time {
	return jobs.Latest(planned(r), s.StartedAt, s.EndedAt)
}

func stepStarted(r jobs.Run, s jobs.Step) time.Time { return orElse(s.StartedAt, planned(r)) }

func stepEnded(r jobs.Run, s jobs.Step) time.Time { return orElse(s.EndedAt, planned(r)) }

// jobCreated is when the job was created (zero when it is gone).
func (t *tree) jobCreated(jobID string) time.Time {
	j, err := t.m.JobByID(jobID)
	if err != nil {
		return time.Time{}
	}
	return j.Created
}

// keysChanged is the newest time of a job's recorded keys that start with
// prefix (jobs.Manager.Times), and never older than the job.
func (t *tree) keysChanged(jobID, prefix string, except ...string) time.Time {
	out := t.jobCreated(jobID)
next:
	for k, v := range t.m.Times(jobID) {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		for _, e := range except {
			if strings.HasPrefix(k, e) {
				continue next
			}
		}
		out = jobs.Latest(out, v)
	}
	return out
}

// dataChanged is when data was last written with a payload that started a
// run: the newest manual run's queueing, or the job's creation.
func (t *tree) dataChanged(jobID string) time.Time {
	// Run ids are dense and never reused: the newest maxScan are read by
	// number from the latest (a deleted one is skipped), not by listing
	// every id of the job, which a stat of data paid for each run kept
	// (a quarter of the daemon's CPU at 60,000 runs kept, perf).
	latest, err := t.m.LatestRun(jobID)
	if err != nil {
		return t.jobCreated(jobID)
	}
	for id := latest; id >= 1 && latest-id < maxScan; id-- {
		if r, err := t.m.Run(jobID, id); err == nil && r.Trigger == jobs.Manual {
			return r.Queued
		}
	}
	return t.jobCreated(jobID)
}

// maxScan bounds how many run ids dataChanged reads back to a manual run.
const maxScan = 16
