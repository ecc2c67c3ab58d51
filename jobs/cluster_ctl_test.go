package jobs_test

import (
	"strings"
	"testing"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/etcdstore/etcdtest"
)

// TestClusterCtlRelayed: pause, resume and stop written on a node that
// views only reach the node executing the run, through the store; each
// returns once that node did it.
func TestClusterCtlRelayed(t *testing.T) {
	c := etcdtest.Start(t, 3)
	state := t.TempDir()
	a := clusterNode(t, c, state, "a", true) // views and triggers only
	clusterNode(t, c, state, "b", false)
	j := scriptJobOn(t, a, "relayed", "#!/bin/sh\necho started\nexec sleep 60\n")
	id, err := a.Trigger(j.ID, []byte("{}"), jobs.Manual)
	if err != nil {
		t.Fatal(err)
	}
	waitRunWhere(t, a, j.ID, id, "RUNNING on b", func(r jobs.Run) bool { return r.Status == jobs.Running && r.Node == "b" })
	switch err := a.Pause(j.ID, id); {
	case err != nil && strings.Contains(err.Error(), "freezer"):
		t.Logf("no pause here: %v", err)
	case err != nil:
		t.Fatalf("pause relayed to b: %v", err)
	default:
		if r, _ := a.Run(j.ID, id); r.Status != jobs.Paused {
			t.Fatalf("after the pause returned: %s, want PAUSED", r.Status)
		}
		if err := a.Resume(j.ID, id); err != nil {
			t.Fatalf("resume relayed to b: %v", err)
		}
		if r, _ := a.Run(j.ID, id); r.Status != jobs.Running {
			t.Fatalf("after the resume returned: %s, want RUNNING", r.Status)
		}
	}
	if err := a.StopRun(j.ID, id, false); err != nil {
		t.Fatalf("stop relayed to b: %v", err)
	}
	if r := waitEnd(t, a, j.ID, id); r.Status != jobs.Cancelled {
		t.Fatalf("run %d after the stop: %s %q, want CANCELLED", id, r.Status, r.Error)
	}
	if err := a.StopRun(j.ID, id, true); err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Errorf("a kill of the ended run: %v, want \"already ended\"", err)
	}
}
