package etcdstore

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/etcdstore/etcdtest"
)

// TestCreateRunSurvivesMemberLoss: runs created by three stores while each
// etcd member in turn is killed and restarted are all acknowledged, and
// every acknowledged run is stored exactly once, ids dense. A commit that
// etcd applied but whose reply was lost with the member must not fail the
// trigger, nor make a second run when it is tried again.
func TestCreateRunSurvivesMemberLoss(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ns := nodes(t, c, 3)
	mustOK(t, ns[0].CreateJob(jobs.Job{ID: "j1", Owner: 1000, Name: "steady"}))
	var acked atomic.Int64
	var failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range ns {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.CreateRun("j1", jobs.Run{Status: jobs.Pending, Queued: time.Now()}); err != nil {
					failed.Add(1)
					t.Errorf("create run: %v", err)
					continue
				}
				acked.Add(1)
			}
		})
	}
	for i := range 3 {
		time.Sleep(300 * time.Millisecond)
		c.Kill(i)
		time.Sleep(300 * time.Millisecond)
		c.Restart(t, i)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	ids, err := ns[0].RunIDs("j1")
	mustOK(t, err)
	if int64(len(ids)) != acked.Load() {
		t.Errorf("%d runs stored, %d acknowledged (%d failed)", len(ids), acked.Load(), failed.Load())
	}
	for i, id := range ids {
		if id != uint64(i+1) {
			t.Fatalf("run ids not dense: %d at %d", id, i)
		}
	}
	t.Logf("%d runs, %d failed", len(ids), failed.Load())
}
