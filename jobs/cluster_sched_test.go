package jobs_test

import (
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/etcdstore/etcdtest"
)

// TestClusterScheduleOncePerTick: three nodes keep one @every 1s schedule;
// its ticks fire once in all, each on one node: no more runs than whole
// seconds between the schedule's set and its removal, and none after the
// removal, whichever node saw it last.
func TestClusterScheduleOncePerTick(t *testing.T) {
	c := etcdtest.Start(t, 3)
	state := t.TempDir()
	a := clusterNode(t, c, state, "a", false)
	clusterNode(t, c, state, "b", false)
	clusterNode(t, c, state, "c", false)
	j := scriptJobOn(t, a, "tick", "#!/bin/sh\nexit 0\n")
	if err := a.WriteSetting(j.ID, "config/overlap", "allow\n"); err != nil {
		t.Fatal(err)
	}
	set := time.Now()
	if err := a.WriteSetting(j.ID, "config/schedule", "@every 1s\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond)
	if err := a.WriteSetting(j.ID, "config/schedule", "\n"); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	time.Sleep(1500 * time.Millisecond) // a node that fired late records its run
	ids, err := a.Runs(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	ticks := int(removed.Sub(set)/time.Second) + 1
	if len(ids) == 0 || len(ids) > ticks {
		t.Fatalf("%d runs in %d ticks of three nodes: want at least one, at most one per tick", len(ids), ticks)
	}
	seen := map[int64]uint64{}
	for _, id := range ids {
		r := waitEnd(t, a, j.ID, id)
		if r.Trigger != jobs.Schedule {
			t.Errorf("run %d: trigger %s", id, r.Trigger)
		}
		sec := r.Queued.Unix()
		if other, ok := seen[sec]; ok {
			t.Logf("runs %d and %d queued in the same second", other, id)
		}
		seen[sec] = id
	}
	t.Logf("%d runs in %d ticks", len(ids), ticks)
}
