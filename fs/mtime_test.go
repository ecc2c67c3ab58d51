package fs

import (
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs"
)

// The times a run's files and folders show, from its record.
func TestRunTimes(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	pending := jobs.Run{Queued: at(0)}
	if got := runChanged(pending); !got.Equal(at(0)) {
		t.Errorf("pending: status changed %v, want the queueing", got)
	}
	if got := runEnded(pending); !got.Equal(at(0)) {
		t.Errorf("pending: ended_at changed %v, want the queueing (empty since)", got)
	}
	if got := stepsChanged(pending); !got.Equal(at(0)) {
		t.Errorf("pending: steps/ changed %v, want the queueing", got)
	}

	// split (ended at 30) fanned out into render.1 and render.2, which
	// started at 35 and 40; merge was skipped at the end.
	r := jobs.Run{Queued: at(0), StartedAt: at(10), EndedAt: at(50), Result: "output/x", Steps: []jobs.Step{
		{Label: "split", StartedAt: at(10), EndedAt: at(30)},
		{Label: "render.1", StartedAt: at(35), EndedAt: at(45)},
		{Label: "render.2", StartedAt: at(40), EndedAt: at(48)},
		{Label: "merge", EndedAt: at(50)},
	}}
	for _, c := range []struct {
		what      string
		got, want time.Time
	}{
		{"status", runChanged(r), at(50)},
		{"run folder (result added at the end)", runDirChanged(r), at(50)},
		{"steps/ (plan at the start, instances before the first of them started)", stepsChanged(r), at(35)},
		{"merge/status (skipped at the end)", stepChanged(r, r.Steps[3]), at(50)},
		{"merge/started_at (never started: planned)", stepStarted(r, r.Steps[3]), at(10)},
		{"split/ended_at", stepEnded(r, r.Steps[0]), at(30)},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.got.Sub(t0), c.want.Sub(t0))
		}
	}
	if !isInstance(r, "render.2") || isInstance(r, "split") {
		t.Errorf("isInstance: render.2 %v, split %v", isInstance(r, "render.2"), isInstance(r, "split"))
	}
}
