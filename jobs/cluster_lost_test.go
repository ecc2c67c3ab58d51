package jobs_test

import (
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/etcdstore"
	"github.com/jobfs/jobfs/jobs/etcdstore/etcdtest"
)

// waitRunWhere polls run id on m until ok holds (60 s at most).
func waitRunWhere(t *testing.T, m *jobs.Manager, job string, id uint64, what string, ok func(jobs.Run) bool) jobs.Run {
	t.Helper()
	var r jobs.Run
	for range 6000 {
		var err error
		if r, err = m.Run(job, id); err == nil && ok(r) {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("run %d never %s: %s on %q (%s)", id, what, r.Status, r.Node, r.Error)
	return r
}

// TestClusterLostRunRetried: a run whose node lost its lease ends FAILED
// "node X lost" and, as config/retries says, is retried once, by one node,
// on a live node.
func TestClusterLostRunRetried(t *testing.T) {
	c := etcdtest.Start(t, 3)
	state := t.TempDir()
	a := clusterNode(t, c, state, "a", true) // views and triggers only
	clusterNode(t, c, state, "b", false)
	clusterNode(t, c, state, "c", false)
	j := scriptJobOn(t, a, "retried", "#!/bin/sh\n[ \"$JOBFS_RUN\" = 1 ] && exec sleep 60\nexit 0\n")
	if err := a.WriteSetting(j.ID, "config/retries", "2\n"); err != nil {
		t.Fatal(err)
	}
	id, err := a.Trigger(j.ID, []byte("{}"), jobs.Manual)
	if err != nil {
		t.Fatal(err)
	}
	r := waitRunWhere(t, a, j.ID, id, "RUNNING", func(r jobs.Run) bool { return r.Status == jobs.Running })
	lost := r.Node
	revokeNode(t, c, lost)
	if r := waitEnd(t, a, j.ID, id); r.Status != jobs.Failed || r.Error != "node "+lost+" lost" {
		t.Fatalf("run %d: %s %q, want FAILED \"node %s lost\"", id, r.Status, r.Error, lost)
	}
	retry := waitRunWhere(t, a, j.ID, id+1, "made", func(jobs.Run) bool { return true })
	if retry.RetryOf != id || retry.Trigger != jobs.Retry {
		t.Fatalf("run %d: retry of %d, trigger %s; want the retry of run %d", id+1, retry.RetryOf, retry.Trigger, id)
	}
	if r := waitEnd(t, a, j.ID, id+1); r.Status != jobs.Completed || r.Node == lost {
		t.Fatalf("the retry: %s on %q (%s), want COMPLETED on a live node", r.Status, r.Node, r.Error)
	}
	time.Sleep(2 * time.Second) // two sweeps: a second retry would be made by now
	if ids, err := a.Runs(j.ID); err != nil || len(ids) != 2 {
		t.Fatalf("runs %v (%v), want the run and one retry", ids, err)
	}
}

// TestClusterUnmadeRunFails: a PENDING run whose maker (the trigger's
// node) died before laying out its folder is ended FAILED, saying so, by
// another node; while its maker lives it waits.
func TestClusterUnmadeRunFails(t *testing.T) {
	c := etcdtest.Start(t, 3)
	state := t.TempDir()
	a := clusterNode(t, c, state, "a", false)
	j := scriptJobOn(t, a, "unmade", "#!/bin/sh\nexit 0\n")
	cli, err := clientv3.New(etcdtest.ClientConfig(c.Endpoints()))
	if err != nil {
		t.Fatal(err)
	}
	maker := etcdstore.New(etcdstore.Config{Client: cli, OwnClient: true, Prefix: "/" + t.Name() + "/", Instance: jobs.Instance{ID: "x"}})
	t.Cleanup(func() { _ = maker.Close() }) // closed below; a second close is a no-op
	if err := maker.Join("x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// x stores a run as a trigger does, and dies before its folder exists.
	r, err := maker.CreateRun(j.ID, jobs.Run{Status: jobs.Pending, Trigger: jobs.Manual, Queued: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // two sweeps of a: the maker lives, the run waits
	if got, err := a.Run(j.ID, r.ID); err != nil || got.Status != jobs.Pending {
		t.Fatalf("run %d while its maker lives: %s (%v), want PENDING", r.ID, got.Status, err)
	}
	if err := maker.Close(); err != nil { // revokes x's lease, as etcd does when x dies
		t.Fatal(err)
	}
	got := waitEnd(t, a, j.ID, r.ID)
	if got.Status != jobs.Failed || !strings.Contains(got.Error, "lost before it wrote the run's input") {
		t.Fatalf("run %d after its maker died: %s %q", r.ID, got.Status, got.Error)
	}
}

// TestClusterFencedNodeStillTriggers: a node whose lease is gone executes
// nothing more, but a trigger through it is stored (not lost: a writer's
// close may not read the error) and run by a live node.
func TestClusterFencedNodeStillTriggers(t *testing.T) {
	c := etcdtest.Start(t, 3)
	state := t.TempDir()
	a := clusterNode(t, c, state, "a", false)
	b := clusterNode(t, c, state, "b", false)
	j := scriptJobOn(t, a, "fenced", "#!/bin/sh\nexit 0\n")
	revokeNode(t, c, "b")
	for i := range 3 { // the first may be made before b learned of it, the last after
		id, err := b.Trigger(j.ID, []byte("{}"), jobs.Manual)
		if err != nil {
			t.Fatalf("trigger %d through the fenced node: %v", i, err)
		}
		if r := waitEnd(t, a, j.ID, id); r.Status != jobs.Completed || r.Node != "a" {
			t.Fatalf("run %d: %s on %q (%s), want COMPLETED on a", id, r.Status, r.Node, r.Error)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
