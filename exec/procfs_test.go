package exec

import (
	"errors"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// group is a process group started by a test: a leader and children.
type group struct {
	cmd    *osexec.Cmd
	pgid   int
	exited chan struct{}
	err    error
}

// startGroup runs `sh -c script` as the leader of a new process group and
// waits until the group has n processes.
func startGroup(t *testing.T, script string, n int) *group {
	t.Helper()
	cmd := osexec.Command("/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", marker}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &group{cmd: cmd, pgid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		g.err = cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-g.pgid, syscall.SIGKILL)
		<-g.exited
	})
	eventually(t, "the group has all its processes", func() bool { return len(g.members()) == n })
	return g
}

func (g *group) members() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		if pg, _, ok := procStat(pid); ok && pg == g.pgid {
			out = append(out, pid)
		}
	}
	return out
}

// waitKilled waits (bounded) for the leader to be reaped and reports
// whether SIGKILL ended it.
func (g *group) waitKilled(t *testing.T) bool {
	t.Helper()
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the group leader was not killed")
	}
	var ee *osexec.ExitError
	return errors.As(g.err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
}

func TestProcessStart(t *testing.T) {
	self := ProcessStart(os.Getpid())
	if self == 0 {
		t.Fatal("ProcessStart of this process = 0")
	}
	g := startGroup(t, "exec sleep 100", 1)
	if st := ProcessStart(g.pgid); st < self {
		t.Errorf("a child started at tick %d, before its parent at %d", st, self)
	}
	if st := ProcessStart(1 << 30); st != 0 {
		t.Errorf("ProcessStart of a missing pid = %d, want 0", st)
	}
}

// TestProcStatOddName: a command name with spaces and parentheses does not
// shift the fields.
func TestProcStatOddName(t *testing.T) {
	dir := t.TempDir()
	odd := dir + "/a) b (c"
	if err := os.Symlink("/bin/sleep", odd); err != nil {
		t.Fatal(err)
	}
	g := startGroup(t, "exec '"+odd+"' 100", 1)
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(g.pgid) + "/comm")
	if !strings.Contains(string(b), ")") {
		t.Skipf("comm %q holds no parenthesis", b)
	}
	pgid, start, ok := procStat(g.pgid)
	if !ok || pgid != g.pgid || start == 0 {
		t.Errorf("procStat = %d, %d, %v; want pgid %d", pgid, start, ok, g.pgid)
	}
}

func TestKillGroup(t *testing.T) {
	t.Parallel()
	g := startGroup(t, "sleep 100 & sleep 100 & exec sleep 100", 3)
	members := g.members()
	if n := KillGroup(g.pgid, ProcessStart(g.pgid)); n != 3 {
		t.Errorf("KillGroup = %d, want 3", n)
	}
	if !g.waitKilled(t) {
		t.Errorf("leader ended with %v, want SIGKILL", g.err)
	}
	for _, pid := range members {
		eventually(t, "every process of the group is gone", func() bool { return !alive(pid) })
	}
}

func TestKillGroupRefusesLowPgids(t *testing.T) {
	for _, pgid := range []int{-1, 0, 1} {
		if n := KillGroup(pgid, 0); n != 0 {
			t.Errorf("KillGroup(%d) = %d, want 0", pgid, n)
		}
	}
	if n := KillGroup(1<<30, 0); n != 0 {
		t.Errorf("KillGroup of a missing group = %d, want 0", n)
	}
}

// TestKillGroupSparesOlderProcesses: a process that started before the
// recorded start cannot belong to the recorded group and is left alone.
func TestKillGroupSparesOlderProcesses(t *testing.T) {
	t.Parallel()
	g := startGroup(t, "exec sleep 100", 1)
	start := ProcessStart(g.pgid)
	if n := KillGroup(g.pgid, start+1); n != 0 {
		t.Errorf("KillGroup with a later start = %d, want 0", n)
	}
	if !alive(g.pgid) {
		t.Fatal("KillGroup killed a process older than the recorded start")
	}
	if n := KillGroup(g.pgid, start); n != 1 {
		t.Errorf("KillGroup with the leader's start = %d, want 1", n)
	}
	if !g.waitKilled(t) {
		t.Errorf("leader ended with %v, want SIGKILL", g.err)
	}
}

// TestKillGroupSparesAReusedPgid: after a crash, the pgid a run recorded
// may name another group by the time jobfs restarts (the kernel reuses a
// pid once no process uses it as pid or pgid). Its leader then has the
// recorded pid but a later start than recorded, and the doc comment
// promises such a group is left alone. Simulated here by recording a start
// one tick before the live leader's.
func TestKillGroupSparesAReusedPgid(t *testing.T) {
	t.Parallel()
	g := startGroup(t, "sleep 100 & exec sleep 100", 2)
	recorded := ProcessStart(g.pgid) - 1
	n := KillGroup(g.pgid, recorded)
	if n != 0 || !alive(g.pgid) {
		t.Errorf("KillGroup(%d, %d) killed %d process(es) of a group whose leader %d started at tick %d, not the recorded %d",
			g.pgid, recorded, n, g.pgid, recorded+1, recorded)
	}
}
