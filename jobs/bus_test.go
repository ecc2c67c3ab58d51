package jobs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// drain takes every event waiting for s without blocking.
func drain(t *testing.T, m testManager, s *Subscription) []Event {
	t.Helper()
	var out []Event
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		evs, err := s.Next(ctx, m.Closing(), 1000)
		cancel()
		if err != nil {
			return out
		}
		out = append(out, evs...)
	}
}

// A reader that does not read gets the first subscriberQueue events, then
// one missed line counting the rest; the numbering has no gap; publishing
// never waited for it.
func TestBusSlowReaderMisses(t *testing.T) {
	m := newTestManager(t, Options{})
	j := mustCreateJob(t, m, "bus")
	s := m.Subscribe(Caller{UID: 12345}, true)
	defer s.Close(m.Manager)
	const n = subscriberQueue + 100
	for i := 0; i < n; i++ {
		mustOK(t, m.WriteSetting(j.ID, "description", "x"+strings.Repeat("y", i%7)+"\n"))
	}
	evs := drain(t, m, s)
	if len(evs) != subscriberQueue+1 {
		t.Fatalf("%d lines, want %d events and a missed line", len(evs), subscriberQueue)
	}
	last := evs[len(evs)-1]
	if last.Type != EventMissed || last.Missed != n-subscriberQueue || last.Seq != subscriberQueue+1 {
		t.Errorf("last line %+v, want missed %d at seq %d", last, n-subscriberQueue, subscriberQueue+1)
	}
	for i, e := range evs[:subscriberQueue] {
		if e.Seq != uint64(i+1) || e.Type != EventSetting || e.Job != j.Name {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
	mustOK(t, m.WriteSetting(j.ID, "description", "after\n"))
	if evs := drain(t, m, s); len(evs) != 1 || evs[0].Seq != uint64(n+1) {
		t.Errorf("the next event after the missed ones: %+v, want seq %d", evs, n+1)
	}
}

// A reader sees its own jobs and none of another user's unshared ones;
// root sees all.
func TestBusVisibility(t *testing.T) {
	m := newTestManager(t, Options{})
	mine, err := m.CreateJob(4242, jobName("mine"))
	mustOK(t, err)
	theirs, err := m.CreateJob(4343, jobName("theirs"))
	mustOK(t, err)
	user := m.Subscribe(Caller{UID: 4242, GIDs: []uint32{4242}}, false)
	defer user.Close(m.Manager)
	root := m.Subscribe(Caller{UID: 0}, false)
	defer root.Close(m.Manager)
	mustOK(t, m.WriteSetting(theirs.ID, "description", "hidden\n"))
	mustOK(t, m.WriteSetting(mine.ID, "description", "seen\n"))
	if evs := drain(t, m, user); len(evs) != 1 || evs[0].Job != mine.Name || evs[0].Seq != 1 {
		t.Errorf("the user's events: %+v, want only their own job's", evs)
	}
	if evs := drain(t, m, root); len(evs) != 2 {
		t.Errorf("root's events: %+v, want both", evs)
	}
}

// Identical skipped ticks are logged once, then counted in one line when
// another event comes.
func TestSkippedTicksFold(t *testing.T) {
	m := newTestManager(t, Options{})
	j := mustCreateJob(t, m, "fold")
	for i := 0; i < 50; i++ {
		m.skippedTick(j.ID, "T", "a run is active (overlap skip)")
	}
	mustOK(t, m.WriteSetting(j.ID, "description", "next\n"))
	log := strings.Join(jobLogLines(t, m, j.ID), "\n")
	if strings.Count(log, "schedule: tick T skipped") != 1 || !strings.Contains(log, "schedule: skipped 49 more ticks since ") {
		t.Errorf("job log:\n%s", log)
	}
}

// A mkdir of a bad name has no job log to hold its reason: the owner's
// event readers get it, and no one else's.
func TestBusRefusedJob(t *testing.T) {
	m := newTestManager(t, Options{})
	user := m.Subscribe(Caller{UID: 4242, GIDs: []uint32{4242}}, false)
	defer user.Close(m.Manager)
	other := m.Subscribe(Caller{UID: 4343, GIDs: []uint32{4343}}, false)
	defer other.Close(m.Manager)
	if _, err := m.CreateJob(4242, "bad name"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("CreateJob(bad name) = %v, want ErrInvalid", err)
	}
	evs := drain(t, m, user)
	if len(evs) != 1 || evs[0].Type != EventRefused || evs[0].Job != "bad name" || !strings.Contains(evs[0].Reason, "starting with a letter or digit") {
		t.Errorf("the owner's events: %+v, want one job.refused with the reason", evs)
	}
	if evs := drain(t, m, other); len(evs) != 0 {
		t.Errorf("another user's events: %+v, want none", evs)
	}
}
