package jobs

import (
	"testing"
	"time"
)

func u64(v uint64) *uint64 { return &v }

// TestSumUsage: CPU and I/O add up; a peak is the largest sum over steps
// running at once (steps in sequence: the larger one); a field no step
// measured stays unknown, and a step without usage counts for nothing.
func TestSumUsage(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	step := func(start, end int, cpu, mem uint64) Step {
		return Step{StartedAt: at(start), EndedAt: at(end), Usage: &Usage{CPUNanos: u64(cpu), MemoryPeak: u64(mem)}}
	}
	seq := SumUsage([]Step{step(0, 1, 10, 100), step(1, 2, 20, 300), {Label: "skipped"}})
	if *seq.CPUNanos != 30 || *seq.MemoryPeak != 300 {
		t.Errorf("in sequence: cpu %d mem %d, want 30 and 300", *seq.CPUNanos, *seq.MemoryPeak)
	}
	if seq.IORead != nil || seq.IOWrite != nil || seq.PidsPeak != nil {
		t.Errorf("fields no step measured: %+v, want unknown", seq)
	}
	par := SumUsage([]Step{step(0, 3, 1, 100), step(1, 2, 1, 300), step(2, 4, 1, 50)})
	if *par.MemoryPeak != 400 {
		t.Errorf("overlapping steps: memory peak %d, want 400 (100+300 at once)", *par.MemoryPeak)
	}
	// A step that took no time, or whose start was recorded after its end
	// (a daemon that died before it recorded the start), counts at its
	// moment, also beside a step ending or starting then.
	for _, s := range []Step{step(1, 1, 1, 70), step(2, 1, 1, 70)} {
		if got := SumUsage([]Step{s}); got.MemoryPeak == nil || *got.MemoryPeak != 70 {
			t.Errorf("a step from %v to %v: memory peak %v, want 70", s.StartedAt, s.EndedAt, got.MemoryPeak)
		}
	}
	if got := SumUsage([]Step{step(0, 1, 1, 5), step(1, 1, 1, 70), step(1, 2, 1, 6)}); *got.MemoryPeak != 76 {
		t.Errorf("an instant step between two: memory peak %d, want 76 (it and the one starting then)", *got.MemoryPeak)
	}
	if none := SumUsage([]Step{{Label: "a", StartedAt: at(0), EndedAt: at(1)}}); none != (Usage{}) {
		t.Errorf("no step measured: %+v, want all unknown", none)
	}
}

// TestRunWhoAndDuration: who started a run, and how long it ran (growing
// with the clock while it is active).
func TestRunWhoAndDuration(t *testing.T) {
	for _, c := range []struct {
		r    Run
		want string
	}{
		{Run{Trigger: Manual, TriggeredBy: "alice"}, "alice"},
		{Run{Trigger: Schedule}, "schedule"},
		{Run{Trigger: Manual}, "unknown"},
	} {
		if got := c.r.Who(); got != c.want {
			t.Errorf("%+v: Who = %q, want %q", c.r, got, c.want)
		}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Run{StartedAt: start}
	if d, ok := r.Duration(start.Add(3 * time.Second)); !ok || d != 3*time.Second {
		t.Errorf("active run: %v %v, want 3s", d, ok)
	}
	r.EndedAt = start.Add(time.Second)
	if d, _ := r.Duration(start.Add(time.Hour)); d != time.Second {
		t.Errorf("ended run: %v, want 1s", d)
	}
	if _, ok := (Run{}).Duration(start); ok {
		t.Error("a run that never started has a duration")
	}
}

// TestTriggerRecordsWho: a scheduled run says schedule; a write records
// its writer by name. Steps run without cgroups here: their usage is
// unknown, never 0.
func TestTriggerRecordsWho(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "who", "#!/bin/sh\ntrue\n")
	id, err := m.Trigger(j.ID, []byte("{}"), Schedule)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := m.TriggerAs(j.ID, []byte("{}"), Manual, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   uint64
		want string
	}{{id, "schedule"}, {id2, UserName(0)}} {
		r := waitRun(t, m, j.ID, c.id)
		if r.Who() != c.want {
			t.Errorf("run %d: triggered_by %q, want %q", c.id, r.Who(), c.want)
		}
		if r.Status != Completed || r.TotalUsage() != (Usage{}) || len(r.Steps) != 1 || r.Steps[0].Usage != nil {
			t.Errorf("run %d without cgroups: %s, usage %+v, steps %+v: want COMPLETED and unknown usage", c.id, r.Status, r.TotalUsage(), r.Steps)
		}
	}
}
