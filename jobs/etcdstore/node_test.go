package etcdstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/etcdstore/etcdtest"
)

// nodes opens n stores on one prefix of cluster c, as n daemons.
func nodes(t *testing.T, c *etcdtest.Cluster, n int) []*Store {
	t.Helper()
	var out []*Store
	for range n {
		cli, err := clientv3.New(etcdtest.ClientConfig(c.Endpoints()))
		if err != nil {
			t.Fatal(err)
		}
		s := New(Config{Client: cli, OwnClient: true, Prefix: "/team/"})
		t.Cleanup(func() { _ = s.Close() }) // a second Close is a no-op
		out = append(out, s)
	}
	return out
}

// TestClaimOnceAndFence: of three nodes racing for a run one claims it; once
// its lease is gone its writes are refused, another node ends the run as
// lost exactly once, and the name is free again.
func TestClaimOnceAndFence(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ns := nodes(t, c, 3)
	for i, name := range []string{"a", "b", "c"} {
		if err := ns[i].Join(name, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := ns[1].Join("a", 5*time.Second); !errors.Is(err, ErrNodeTaken) {
		t.Fatalf("a second live node a: %v, want ErrNodeTaken", err)
	}
	mustOK(t, ns[0].CreateJob(jobs.Job{ID: "j1", Owner: 1000, Name: "etl"}))
	r, err := ns[1].CreateRun("j1", jobs.Run{Status: jobs.Pending, Queued: time.Now()})
	mustOK(t, err)

	var wins atomic.Int32
	var winner atomic.Int32
	var wg sync.WaitGroup
	for i, s := range ns {
		wg.Go(func() {
			ok, err := s.Claim("j1", r.ID)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
				winner.Store(int32(i))
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d nodes claimed the run, want 1", wins.Load())
	}
	w := ns[winner.Load()]
	other := ns[(winner.Load()+1)%3]
	got, err := other.Run("j1", r.ID)
	mustOK(t, err)
	if got.Node != w.Node() {
		t.Fatalf("run's node = %q, want %q", got.Node, w.Node())
	}
	_, err = w.UpdateRun("j1", r.ID, func(r *jobs.Run) { r.Status = jobs.Running })
	mustOK(t, err)
	if lost, err := other.LostRuns(); err != nil || len(lost) != 0 {
		t.Fatalf("LostRuns with its node alive = %v, %v", lost, err)
	}

	// The winner's lease ends as if it expired (cut off, stopped).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := other.cli.Revoke(ctx, w.sess.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Lost():
	case <-time.After(10 * time.Second): // a hang, not a measure
		t.Fatal("Lost not closed after the lease ended")
	}
	if _, err := w.UpdateRun("j1", r.ID, func(r *jobs.Run) { r.Status = jobs.Completed }); !errors.Is(err, ErrFenced) {
		t.Fatalf("write by the fenced node: %v, want ErrFenced", err)
	}
	lost, err := other.LostRuns()
	mustOK(t, err)
	if len(lost) != 1 || lost[0].Run.ID != r.ID {
		t.Fatalf("LostRuns = %v, want run %d", lost, r.ID)
	}
	var ended atomic.Int32
	for _, s := range ns {
		if s == w {
			continue
		}
		wg.Go(func() {
			ok, err := s.EndLost("j1", r.ID, func(r *jobs.Run) {
				r.Status, r.Error = jobs.Failed, "node "+r.Node+" lost"
			})
			if err != nil {
				t.Error(err)
			}
			if ok {
				ended.Add(1)
			}
		})
	}
	wg.Wait()
	if ended.Load() != 1 {
		t.Fatalf("%d nodes ended the lost run, want 1", ended.Load())
	}
	got, err = other.Run("j1", r.ID)
	mustOK(t, err)
	if got.Status != jobs.Failed || !strings.HasPrefix(got.Error, "node "+w.Node()) {
		t.Fatalf("lost run = %s %q", got.Status, got.Error)
	}
	if act, _ := other.ActiveRuns(); len(act) != 0 {
		t.Fatalf("ActiveRuns after the lost run ended = %v", act)
	}
	// The name is free again once its lease is gone.
	s2 := nodes(t, c, 1)[0]
	mustOK(t, s2.Join(w.Node(), 5*time.Second))
}

// TestClaimTickOnce: three nodes fire each schedule tick once in all.
func TestClaimTickOnce(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ns := nodes(t, c, 3)
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	for tick := range 5 {
		at := t0.Add(time.Duration(tick) * time.Minute)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, s := range ns {
			wg.Go(func() {
				ok, err := s.ClaimTick("j1", at)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("tick %d fired by %d nodes, want 1", tick, wins.Load())
		}
	}
	if ok, err := ns[0].ClaimTick("j1", t0); err != nil || ok {
		t.Fatalf("an old tick again = %v, %v; want not fired", ok, err)
	}
}

// TestKeyFingerprint: the first node's key is the cluster's; another is refused.
func TestKeyFingerprint(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ns := nodes(t, c, 2)
	mustOK(t, ns[0].CheckKeyFingerprint("sha256:aaaa"))
	mustOK(t, ns[1].CheckKeyFingerprint("sha256:aaaa"))
	if err := ns[1].CheckKeyFingerprint("sha256:bbbb"); err == nil || !strings.Contains(err.Error(), "not the cluster's") {
		t.Fatalf("a different key: %v", err)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
