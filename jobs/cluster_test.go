package jobs_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/etcdstore"
	"github.com/jobfs/jobfs/jobs/etcdstore/etcdtest"
)

// clusterPrefix marks job names as this test binary's (as testPrefix in
// helpers_test.go), so TestMain finds steps left running.
var clusterPrefix = "ut" + strconv.Itoa(os.Getpid()) + "-"

// clusterNode starts a Manager as node name of the cluster c, on the
// shared state folder state; the test's cleanup closes it.
func clusterNode(t *testing.T, c *etcdtest.Cluster, state, name string, noExec bool) *jobs.Manager {
	t.Helper()
	cli, err := clientv3.New(etcdtest.ClientConfig(c.Endpoints()))
	if err != nil {
		t.Fatal(err)
	}
	s := etcdstore.New(etcdstore.Config{Client: cli, OwnClient: true, Prefix: "/" + t.Name() + "/",
		Instance: jobs.Instance{ID: name}})
	if err := s.Join(name, 2*time.Second); err != nil {
		_ = s.Close() // the join's error is the one to report
		t.Fatal(err)
	}
	m, err := jobs.New(jobs.Options{StateDir: state, Store: s, Cluster: s, NoExecute: noExec,
		Grace: 100 * time.Millisecond, MaxActive: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close node %s: %v", name, err)
		}
	})
	return m
}

func waitEnd(t *testing.T, m *jobs.Manager, job string, id uint64) jobs.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := m.Wait(ctx, job, id)
	if err != nil {
		t.Fatalf("wait for run %d: %v", id, err)
	}
	if !r.Status.Terminal() {
		t.Fatalf("run %d: Wait returned %s", id, r.Status)
	}
	return r
}

func scriptJobOn(t *testing.T, m *jobs.Manager, name, script string) jobs.Job {
	t.Helper()
	j, err := m.CreateJob(uint32(os.Getuid()), clusterPrefix+name)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"config/type": "script\n", "config/script": script} {
		if err := m.WriteSetting(j.ID, k, v); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

// TestClusterTriggerExecutesOnce: two nodes on one etcd cluster and one
// state folder; runs triggered on either are executed once each, by one
// node, and Wait on the node that did not execute a run sees it end.
func TestClusterTriggerExecutesOnce(t *testing.T) {
	c := etcdtest.Start(t, 3)
	state := t.TempDir()
	a := clusterNode(t, c, state, "a", false)
	b := clusterNode(t, c, state, "b", false)
	count := filepath.Join(t.TempDir(), "count")
	j := scriptJobOn(t, a, "once", "#!/bin/sh\necho \"$JOBFS_RUN\" >> "+count+"\n")
	if _, err := b.Store().JobByName(j.Owner, j.Name); err != nil {
		t.Fatalf("the job made on a, read on b: %v", err)
	}
	const n = 20
	ids := make([]uint64, 0, n)
	for i := range n {
		on := []*jobs.Manager{a, b}[i%2]
		id, err := on.Trigger(j.ID, []byte("{}"), jobs.Manual)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	nodes := map[string]int{}
	for i, id := range ids {
		if id != uint64(i+1) {
			t.Fatalf("run ids %v, want 1..%d", ids, n)
		}
		other := []*jobs.Manager{b, a}[i%2] // Wait where it was not triggered
		r := waitEnd(t, other, j.ID, id)
		if r.Status != jobs.Completed || r.Node == "" {
			t.Fatalf("run %d: %s on node %q (%s), want COMPLETED on a node", id, r.Status, r.Node, r.Error)
		}
		nodes[r.Node]++
	}
	lines := strings.Fields(readOrFail(t, count))
	seen := map[string]int{}
	for _, l := range lines {
		seen[l]++
	}
	for _, id := range ids {
		if k := strconv.FormatUint(id, 10); seen[k] != 1 {
			t.Errorf("run %s executed %d times, want once (%v)", k, seen[k], lines)
		}
	}
	t.Logf("runs per node: %v", nodes)
}

// TestClusterLostLease: a run executing on node b whose lease is revoked
// (as etcd expires the lease of a node cut off) is stopped on b at once and
// ended FAILED "node b lost" by node a; b writes nothing over it.
func TestClusterLostLease(t *testing.T) {
	c := etcdtest.Start(t, 3)
	state := t.TempDir()
	a := clusterNode(t, c, state, "a", true) // never executes: b does
	b := clusterNode(t, c, state, "b", false)
	j := scriptJobOn(t, a, "lost", "#!/bin/sh\necho started\nexec sleep 60\n")
	id, err := a.Trigger(j.ID, []byte("{}"), jobs.Manual)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		r, err := a.Run(j.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == jobs.Running && r.Node == "b" {
			break
		}
		if i > 3000 {
			t.Fatalf("run %d never ran on b: %s on %q", id, r.Status, r.Node)
		}
		time.Sleep(10 * time.Millisecond)
	}
	revokeNode(t, c, "b")
	r := waitEnd(t, a, j.ID, id)
	if r.Status != jobs.Failed || r.Error != "node b lost" {
		t.Fatalf("run %d: %s %q, want FAILED \"node b lost\"", id, r.Status, r.Error)
	}
	// b's step ends at once (TestMain fails on a step left running); what
	// b records afterwards must not overwrite a's end.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Wait(ctx, j.ID, id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // b's finish, were it to write
	if r2, err := a.Run(j.ID, id); err != nil || r2.Status != jobs.Failed || r2.Error != "node b lost" {
		t.Fatalf("after b stopped: %+v, %v", r2, err)
	}
}

// revokeNode revokes the lease of node name, as etcd does when the node
// stops renewing it.
func revokeNode(t *testing.T, c *etcdtest.Cluster, name string) {
	t.Helper()
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := cli.Get(ctx, "/"+t.Name()+"/nodes/"+name)
	if err != nil || len(g.Kvs) != 1 {
		t.Fatalf("node %s's key: %v %v", name, g, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(g.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
}

func readOrFail(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestClusterThroughput measures, in one run, trigger-to-COMPLETED latency
// and runs per second of a single daemon on bbolt and of two nodes on a
// 3-member etcd cluster (logged with -v; nothing is asserted about time).
func TestClusterThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("a measurement")
	}
	bolt, err := jobs.New(jobs.Options{StateDir: t.TempDir(), Grace: 100 * time.Millisecond, MaxActive: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() }) // a measurement: its close error is not the point
	lat, rate := measure(t, bolt, bolt, "bolt")
	t.Logf("bbolt, one daemon:       trigger->COMPLETED p50 %v, %.0f runs/s", lat, rate)

	c := etcdtest.Start(t, 3)
	state := t.TempDir()
	a := clusterNode(t, c, state, "a", false)
	b := clusterNode(t, c, state, "b", false)
	lat, rate = measure(t, a, b, "etcd")
	t.Logf("etcd, 2 nodes (3 members): trigger->COMPLETED p50 %v, %.0f runs/s", lat, rate)
}

// measure triggers 30 runs one after the other on on (waiting on wait) for
// the median latency, then 100 at once for the rate.
func measure(t *testing.T, on, wait *jobs.Manager, name string) (time.Duration, float64) {
	t.Helper()
	j := scriptJobOn(t, on, "bench-"+name, "#!/bin/sh\nexit 0\n")
	var lats []time.Duration
	for range 30 {
		began := time.Now()
		id, err := on.Trigger(j.ID, []byte("{}"), jobs.Manual)
		if err != nil {
			t.Fatal(err)
		}
		if r := waitEnd(t, wait, j.ID, id); r.Status != jobs.Completed {
			t.Fatalf("run %d: %s %s", id, r.Status, r.Error)
		}
		lats = append(lats, time.Since(began))
	}
	slices.Sort(lats)
	const n = 100
	began := time.Now()
	ids := make([]uint64, 0, n)
	for range n {
		id, err := on.Trigger(j.ID, []byte("{}"), jobs.Manual)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		waitEnd(t, wait, j.ID, id)
	}
	return lats[len(lats)/2], n / time.Since(began).Seconds()
}
