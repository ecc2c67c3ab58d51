//go:build linux

package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs/etcdstore/etcdtest"
)

// clusterLease is the nodes' --etcd-lease: short, so that a node killed or
// stopped is lost within seconds, yet long enough that a live node keeps it
// on a loaded machine (with 2 s, a node under a load of 20 lost it once).
const clusterLease = "4s"

// teamCluster is one job tree in etcd mounted by three daemons on this
// machine, sharing a data folder (as an NFS folder would be) and a master
// key (a --state folder holding only master.key in etcd mode).
type teamCluster struct {
	etcd        *etcdtest.Cluster
	data, state string
	prefix      string
	nodes       []*daemon
	names       []string
	counter     *execCounter
}

func startTeam(t *testing.T) *teamCluster {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	tc := &teamCluster{etcd: startEtcd(t, 3), data: t.TempDir(), state: t.TempDir(),
		prefix: "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/", names: []string{"a", "b", "c"}}
	tc.counter = newExecCounter(t)
	for _, n := range tc.names {
		tc.nodes = append(tc.nodes, startDaemon(t, daemonOpts{maxActive: 4, args: tc.nodeArgs(n)}))
	}
	return tc
}

// startEtcd starts a real etcd cluster of n members, or skips the test
// saying why it cannot.
func startEtcd(t *testing.T, n int) *etcdtest.Cluster {
	t.Helper()
	if err := etcdtest.Available(); err != nil {
		t.Skipf("etcd cannot start here: %v", err)
	}
	return etcdtest.Start(t, n)
}

func (tc *teamCluster) nodeArgs(name string) []string {
	return []string{"--store", "etcd://" + strings.Join(tc.etcd.Endpoints(), ","), "--etcd-prefix", tc.prefix,
		"--etcd-lease", clusterLease, "--data", tc.data, "--node", name, "--state", tc.state}
}

// execCounter counts the executions of steps: each connects to it and
// sends "<job> <run>" (the steps' /tmp is private, the network is the
// host's).
type execCounter struct {
	ln   net.Listener
	mu   sync.Mutex
	runs map[string]int
}

func newExecCounter(t *testing.T) *execCounter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &execCounter{ln: ln, runs: map[string]int{}}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			go func() {
				defer conn.Close()
				if line, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
					c.mu.Lock()
					c.runs[strings.TrimSpace(line)]++
					c.mu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

// script is a bash step that reports its execution, then runs rest.
func (c *execCounter) script(rest string) string {
	port := c.ln.Addr().(*net.TCPAddr).Port
	return fmt.Sprintf("#!/bin/bash\nexec 3<>/dev/tcp/127.0.0.1/%d && echo \"$JOBFS_JOB $JOBFS_RUN\" >&3 && exec 3>&-\n%s", port, rest)
}

func (c *execCounter) count(job string, run int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[job+" "+strconv.Itoa(run)]
}

func (c *execCounter) total(job string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.runs {
		if strings.HasPrefix(k, job+" ") {
			n += v
		}
	}
	return n
}

// TestClusterTree: three daemons on one etcd cluster show one tree; runs
// triggered through any mount get dense ids and execute once each; a node
// killed or stopped past its lease loses its runs to the others, fenced; an
// etcd member lost meanwhile loses nothing; a schedule fires once per tick.
func TestClusterTree(t *testing.T) {
	tc := startTeam(t)
	a, b, c := tc.nodes[0], tc.nodes[1], tc.nodes[2]

	t.Run("one tree", func(t *testing.T) {
		a.scriptJob(t, "etl", tc.counter.script("echo done\n"))
		for _, d := range []*daemon{b, c} {
			d.wantFile(t, "mnt/etl/config/type", "script\n")
		}
		b.trigger(t, "etl", "{}")
		if got := c.waitRun(t, "etl", 1); got != "COMPLETED" {
			t.Fatalf("run 1 seen on c: %s", got)
		}
		node := strings.TrimSpace(a.cat(t, "mnt/etl/runs/1/node"))
		if !slicesContains(tc.names, node) {
			t.Errorf("runs/1/node = %q, want a node's name", node)
		}
		if got := c.cat(t, "mnt/etl/runs/1/log"); !strings.Contains(got, "done\n") {
			t.Errorf("the log read on c: %q", got)
		}
		c.ok(t, "rm -r mnt/etl")
		waitFor(t, "etl gone on a", func() bool { return a.sh(t, "test -e mnt/etl").code != 0 })
	})

	t.Run("300 triggers", func(t *testing.T) {
		b.scriptJob(t, "many", tc.counter.script(""))
		b.ok(t, "echo 1000 > mnt/many/config/keep") // every run stays to be counted
		const n = 300
		var wg sync.WaitGroup
		for _, d := range tc.nodes {
			wg.Go(func() {
				// In commands of 20: each has the harness's deadline for
				// one command, which a loaded machine needs for 20.
				for range n / 3 / 20 {
					if r := d.sh(t, `for i in $(seq 20); do echo '{}' > mnt/many/data || exit 1; done`); r.code != 0 {
						t.Errorf("triggers through %s:\n%s", d.mnt, r)
						return
					}
				}
			})
		}
		wg.Wait()
		waitAllEnded(t, a, "many", n)
		ids := a.ok(t, "ls mnt/many/runs | grep -x '[0-9]*' | sort -n | tr '\\n' ' '")
		if want := seqLine(n); ids != want {
			t.Fatalf("run ids: %s, want 1..%d", ids, n)
		}
		// A step's report may be read just after its run ended.
		eventually(runTimeout, func() bool { return tc.counter.total("many") >= n })
		for id := 1; id <= n; id++ {
			if k := tc.counter.count(clusterJob(t, a, "many"), id); k != 1 {
				t.Errorf("run %d executed %d times, want once; on %s, its log:\n%s", id, k,
					a.cat(t, fmt.Sprintf("mnt/many/runs/%d/node", id)), a.cat(t, fmt.Sprintf("mnt/many/runs/%d/log", id)))
			}
		}
		if s := a.ok(t, "cat mnt/many/runs/[0-9]*/status | sort | uniq -c"); strings.TrimSpace(s) != fmt.Sprintf("%d COMPLETED", n) {
			t.Errorf("statuses: %s", s)
		}
	})

	t.Run("kill -9 of an executing node", func(t *testing.T) {
		args := sleepArgs()
		a.scriptJob(t, "long", tc.counter.script("sleep "+args+"\n"))
		a.trigger(t, "long", "{}")
		a.waitStatus(t, "long", 1, "RUNNING")
		name := strings.TrimSpace(a.cat(t, "mnt/long/runs/1/node"))
		victim := tc.node(name)
		survivor := tc.other(name)
		victim.kill9(t)
		if got := survivor.waitRun(t, "long", 1); got != "FAILED" {
			t.Fatalf("run 1 after node %s was killed: %s", name, got)
		}
		survivor.wantFile(t, "mnt/long/runs/1/error", "node "+name+" lost\n")
		victim.restart(t) // kills what the killed node left (its cgroups)
		waitFor(t, "the lost step gone", func() bool { return victim.pgrep(t, args) == "" })
	})

	t.Run("SIGSTOP past the lease", func(t *testing.T) {
		args := sleepArgs()
		a.scriptJob(t, "paused", tc.counter.script("sleep "+args+"\n"))
		a.trigger(t, "paused", "{}")
		a.waitStatus(t, "paused", 1, "RUNNING")
		name := strings.TrimSpace(a.cat(t, "mnt/paused/runs/1/node"))
		victim, survivor := tc.node(name), tc.other(name)
		if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		got := survivor.waitRun(t, "paused", 1)
		if err := victim.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		if got != "FAILED" {
			t.Fatalf("run 1 while node %s was stopped: %s", name, got)
		}
		waitFor(t, "the fenced node's step stopped", func() bool { return survivor.pgrep(t, args) == "" })
		survivor.wantFile(t, "mnt/paused/runs/1/error", "node "+name+" lost\n")
		survivor.wantFile(t, "mnt/paused/runs/1/status", "FAILED\n")
		if k := tc.counter.count(clusterJob(t, survivor, "paused"), 1); k != 1 {
			t.Errorf("run 1 executed %d times, want once", k)
		}
		// The fenced node lost its lease: it is restarted to serve again.
		if code := victim.stop(t); code != 0 {
			t.Logf("the fenced node exited %d", code)
		}
		victim.restart(t)
	})

	t.Run("stop through another node's mount", func(t *testing.T) {
		args := sleepArgs()
		a.scriptJob(t, "remote", tc.counter.script("sleep "+args+"\n"))
		a.trigger(t, "remote", "{}")
		a.waitStatus(t, "remote", 1, "RUNNING")
		name := strings.TrimSpace(a.cat(t, "mnt/remote/runs/1/node"))
		other := tc.other(name)
		other.ok(t, "echo stop > mnt/remote/runs/1/ctl") // relayed to the executing node through etcd
		if got := other.waitRun(t, "remote", 1); got != "CANCELLED" {
			t.Fatalf("run 1 after a stop written on another node: %s", got)
		}
		waitFor(t, "the step stopped on its node", func() bool { return tc.node(name).pgrep(t, args) == "" })
	})

	t.Run("an etcd member lost during 100 triggers", func(t *testing.T) {
		c.scriptJob(t, "steady", tc.counter.script(""))
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(300 * time.Millisecond)
			tc.etcd.Kill(2)
		}()
		for _, d := range tc.nodes {
			for _, k := range []int{17, 16} { // 33 in two commands, each within the harness's deadline
				d.ok(t, fmt.Sprintf(`for i in $(seq %d); do echo '{}' > mnt/steady/data || exit 1; done`, k))
			}
		}
		<-done
		tc.etcd.Restart(t, 2)
		a.ok(t, `echo '{}' > mnt/steady/data`)
		waitAllEnded(t, b, "steady", 100)
		if s := b.ok(t, "cat mnt/steady/runs/[0-9]*/status | sort | uniq -c"); strings.TrimSpace(s) != "100 COMPLETED" {
			t.Errorf("statuses: %s", s)
		}
		eventually(5*time.Second, func() bool { return tc.counter.total("steady") >= 100 }) // reports read after the end
		if got := tc.counter.total(clusterJob(t, b, "steady")); got != 100 {
			t.Errorf("%d executions, want 100", got)
		}
	})

	t.Run("a schedule fires once per tick", func(t *testing.T) {
		a.scriptJob(t, "tick", tc.counter.script(""))
		a.ok(t, "echo allow > mnt/tick/config/overlap") // a tick is never skipped for a run still active
		began := time.Now()
		a.ok(t, "echo '@every 1s' > mnt/tick/config/schedule")
		time.Sleep(5 * time.Second)
		a.ok(t, "echo > mnt/tick/config/schedule")
		// A tick's run is prepared 150 ms ahead (jobs.tickLead): one due
		// that soon after the schedule's removal may run too.
		ticks := int((time.Since(began)+150*time.Millisecond)/time.Second) + 1
		time.Sleep(time.Second) // a run started at the last tick is recorded
		runs, _ := strconv.Atoi(strings.TrimSpace(a.ok(t, "ls mnt/tick/runs | grep -c '^[0-9]'")))
		if runs == 0 || runs > ticks {
			t.Errorf("%d runs in %d ticks of three nodes: want at most one per tick", runs, ticks)
		}
	})

	t.Run("another master key is refused", func(t *testing.T) {
		state := t.TempDir()
		mnt := t.TempDir()
		args := append([]string{"mount"}, tc.nodeArgs("d")...)
		args = append(args, "--state", state, mnt)
		cmd := exec.Command(jobfsBin, args...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "master key") {
			t.Errorf("a node with its own master key: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(state, "master.key")); err != nil {
			t.Errorf("its key: %v", err)
		}
	})
}

func (tc *teamCluster) node(name string) *daemon {
	for i, n := range tc.names {
		if n == name {
			return tc.nodes[i]
		}
	}
	panic("no node " + name)
}

func (tc *teamCluster) other(name string) *daemon {
	for i, n := range tc.names {
		if n != name {
			return tc.nodes[i]
		}
	}
	panic("no other node")
}

// clusterJob is the name steps see in JOBFS_JOB.
func clusterJob(_ *testing.T, _ *daemon, name string) string { return name }

// waitAllEnded waits until job has n runs and none is active.
func waitAllEnded(t *testing.T, d *daemon, job string, n int) {
	t.Helper()
	var last string
	// Statuses are read 50 runs to a command: each read through a cluster
	// node costs etcd round trips, and 300 in one command outran the
	// harness's 60 s per command on a loaded machine.
	ok := eventually(3*runTimeout, func() bool {
		r := d.sh(t, `ls "mnt/$J/runs" | grep -cx '[0-9]*'`, "J="+job)
		last = r.out
		if strings.TrimSpace(r.out) != strconv.Itoa(n) {
			return false
		}
		for from := 1; from <= n; from += 50 {
			r := d.sh(t, `for i in $(seq $A $B); do cat "mnt/$J/runs/$i/status"; done | grep -cv -e COMPLETED -e FAILED -e CANCELLED -e TIMEOUT`,
				"J="+job, "A="+strconv.Itoa(from), "B="+strconv.Itoa(min(from+49, n)))
			if strings.TrimSpace(r.out) != "0" {
				last = fmt.Sprintf("%d runs; runs %d to %d: %s active", n, from, min(from+49, n), strings.TrimSpace(r.out))
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("%s: want %d ended runs; runs, active: %q", job, n, last)
	}
}

func seqLine(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i) + " ")
	}
	return b.String()
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestClusterSoak (make soak): 600 triggers spread over three mounts while
// each etcd member in turn is killed and restarted: ids 1..600, each run
// executed once and COMPLETED.
func TestClusterSoak(t *testing.T) {
	relSoak(t)
	tc := startTeam(t)
	a := tc.nodes[0]
	a.scriptJob(t, "soak", tc.counter.script(""))
	a.ok(t, "echo 1000 > mnt/soak/config/keep")
	const n = 600
	stop := make(chan struct{})
	var killer sync.WaitGroup
	killer.Go(func() {
		for i := 0; ; i = (i + 1) % 3 {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second):
			}
			tc.etcd.Kill(i)
			time.Sleep(time.Second)
			tc.etcd.Restart(t, i)
		}
	})
	var wg sync.WaitGroup
	for _, d := range tc.nodes {
		wg.Go(func() {
			for range n / 3 / 20 {
				if r := d.sh(t, `for i in $(seq 20); do echo '{}' > mnt/soak/data || exit 1; done`); r.code != 0 {
					t.Errorf("triggers through %s:\n%s", d.mnt, r)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	killer.Wait()
	if ids := a.ok(t, "ls mnt/soak/runs | grep -x '[0-9]*' | sort -n | tr '\\n' ' '"); ids != seqLine(n) {
		t.Fatalf("run ids: %s, want 1..%d", ids, n)
	}
	// Statuses in commands of 100 reads: 600 in one exceed the harness's
	// deadline for one command on a loaded machine.
	statuses := func() map[string]int {
		got := map[string]int{}
		for lo := 1; lo <= n; lo += 100 {
			r := a.sh(t, fmt.Sprintf(`for i in $(seq %d %d); do cat mnt/soak/runs/$i/status; done`, lo, min(lo+99, n)))
			for _, st := range strings.Fields(r.out) {
				got[st]++
			}
		}
		return got
	}
	var last map[string]int
	if !eventually(3*runTimeout, func() bool { last = statuses(); return last["COMPLETED"] == n }) {
		t.Fatalf("statuses: %v, want %d COMPLETED", last, n)
	}
	waitFor(t, "every execution reported", func() bool { return tc.counter.total("soak") >= n })
	for id := 1; id <= n; id++ {
		if k := tc.counter.count("soak", id); k != 1 {
			t.Errorf("run %d executed %d times, want once", id, k)
		}
	}
}
