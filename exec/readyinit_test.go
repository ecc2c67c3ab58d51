package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobfs/jobfs/exec/stepinit"
)

// TestShimPoolInitAhead: an idle shim of a pool told how steps are
// isolated starts the step's init before the step exists; a step isolated
// that way is handed to that very init (its pgid), one isolated otherwise
// gets an init of its own and the one started ahead is ended. As root the
// step also runs in namespaces and a cgroup the init moved itself into.
func TestShimPoolInitAhead(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Another path to the same init: a step isolated with it does not match.
	other := filepath.Join(t.TempDir(), "other-init")
	if err := os.Symlink(bin, other); err != nil {
		t.Fatal(err)
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	cases := []struct {
		name  string
		ahead InitAhead
		iso   func(s step) *Isolation
		used  bool
	}{
		{"match", InitAhead{Init: bin}, func(step) *Isolation { return &Isolation{Init: bin, UID: uid, GID: gid} }, true},
		{"other", InitAhead{Init: bin}, func(step) *Isolation { return &Isolation{Init: other, UID: uid, GID: gid} }, false},
	}
	if os.Geteuid() == 0 {
		if cg, err := DetectCgroups(); err == nil {
			parent := fmt.Sprintf("jobfs-test-ahead-%d", os.Getpid())
			t.Cleanup(func() {
				if err := cg.Clean(parent); err != nil {
					t.Errorf("remove the test's cgroups: %v", err)
				}
			})
			cases = append(cases, struct {
				name  string
				ahead InitAhead
				iso   func(s step) *Isolation
				used  bool
			}{"namespaces and cgroup", InitAhead{Init: bin, Namespaces: true}, func(s step) *Isolation {
				in, out := s.inOut(t)
				return &Isolation{Init: bin, UID: uid, GID: gid, Namespaces: true, Cgroups: cg, Group: parent + "/step",
					Limits: Limits{Pids: 64}, Input: in, Output: out, App: s.dir}
			}, true})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := aheadPool(t, bin, c.ahead)
			ready := readyInitOf(t, pool)
			// While it waits it holds no copy of the host's mounts (which
			// would keep them busy: a daemon's unmount of its own mount
			// hung). One that builds the step's root ahead (as root, with
			// namespaces) holds that root alone: the system folders' binds
			// (and, opened, its cgroup hierarchies' folders: cgroupRoots).
			if rootAhead(c.ahead) {
				eventually(t, "the waiting init builds the step's root", func() bool {
					b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", ready))
					return err == nil && strings.Contains(string(b), " / / rw,nosuid,nodev") && strings.Contains(string(b), " - tmpfs jobfs ")
				})
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", ready))
				if err != nil {
					t.Fatal(err)
				}
				for _, fstype := range []string{" - sysfs ", " - cgroup", " - fuse", " - ext4 "} {
					for _, l := range strings.Split(string(b), "\n") {
						if strings.Contains(l, fstype) && !strings.Contains(l, " /usr ") && !strings.Contains(l, " /etc ") && !strings.Contains(l, " /opt ") && !strings.Contains(l, " /bin ") && !strings.Contains(l, " /lib") && !strings.Contains(l, " /sbin ") {
							t.Errorf("the waiting init holds a mount beyond the step's root: %s", l)
						}
					}
				}
			} else if a, b := mountNS(t, os.Getpid()), mountNS(t, ready); a != b {
				t.Errorf("the waiting init is in mount namespace %s, not the host's %s", b, a)
			}
			s := newStep(t, "#!/bin/sh\necho \"pid=$$\"\necho \"ns=$(readlink /proc/self/ns/pid)\"\necho \"mnt=$(readlink /proc/self/ns/mnt)\"\ncat /proc/self/cgroup\n")
			sp := s.shimmed(t)
			sp.Shim.Pool = pool
			sp.Isolation = c.iso(s)
			var pgid int
			sp.Started = func(p int, _ uint64, _ time.Time) { pgid = p }
			r := runBounded(t, context.Background(), sp)
			pgid = startedPgid(r, pgid)
			if r.Outcome != Exited || r.ExitCode != 0 || r.Err != nil {
				t.Fatalf("Run = %+v, want Exited 0; log:\n%s", r, s.readLog(t))
			}
			log := s.readLog(t)
			if !strings.Contains(log, "pid=") {
				t.Errorf("log = %q", log)
			}
			if used := pgid == ready; used != c.used {
				t.Errorf("the step's init is %d, the one started ahead %d: handed to it = %v, want %v", pgid, ready, used, c.used)
			}
			own, err := os.Readlink("/proc/self/ns/pid")
			if err != nil {
				t.Fatal(err)
			}
			if inOwn := strings.Contains(log, "ns="+own+"\n"); inOwn == sp.Isolation.Namespaces {
				t.Errorf("the step in the test's pid namespace (%s) = %v, want %v: %q", own, inOwn, !sp.Isolation.Namespaces, log)
			}
			if inHost := strings.Contains(log, "mnt="+mountNS(t, os.Getpid())+"\n"); inHost == sp.Isolation.Namespaces {
				t.Errorf("the step in the host's mount namespace = %v, want %v: %q", inHost, !sp.Isolation.Namespaces, log)
			}
			if sp.Isolation.Cgroups != nil && !strings.Contains(log, sp.Isolation.Group) {
				t.Errorf("the step is not in its cgroup %s: %q", sp.Isolation.Group, log)
			}
			if !c.used { // the one started ahead was ended, not left behind
				deadline := time.Now().Add(5 * time.Second)
				for syscall.Kill(ready, 0) == nil && !isZombie(ready) {
					if time.Now().After(deadline) {
						t.Fatalf("the init started ahead (%d) still runs", ready)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
}

// TestShimPoolFollowsStepKind: a step isolated otherwise than the inits
// started ahead expect (config/network none) finds none ready, but the
// shims started after it start inits like its, so the next such step is
// handed one.
func TestShimPoolFollowsStepKind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a network namespace of its own needs root here")
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pool := aheadPool(t, bin, InitAhead{Init: bin, Namespaces: true})
	run := func() (pgid int) {
		t.Helper()
		s := newStep(t, "#!/bin/sh\ncat /proc/net/dev\n")
		in, out := s.inOut(t)
		sp := s.shimmed(t)
		sp.Shim.Pool = pool
		sp.Isolation = &Isolation{Init: bin, UID: 0, GID: 0, Namespaces: true, NoNetwork: true,
			Input: in, Output: out, App: s.dir}
		sp.Started = func(p int, _ uint64, _ time.Time) { pgid = p }
		r := runBounded(t, context.Background(), sp)
		if r.Outcome != Exited || r.ExitCode != 0 || r.Err != nil {
			t.Fatalf("Run = %+v, want Exited 0; log:\n%s", r, s.readLog(t))
		}
		pgid = startedPgid(r, pgid)
		if log := s.readLog(t); strings.Contains(log, "eth") || strings.Contains(log, "ens") {
			t.Errorf("a step of network none sees the host's interfaces:\n%s", log)
		}
		return pgid
	}
	first := readyInitOf(t, pool)
	if pgid := run(); pgid == first {
		t.Errorf("a step of network none was handed the init started for host networking (%d)", first)
	}
	second := readyInitOf(t, pool)
	if pgid := run(); pgid != second {
		t.Errorf("the next step of network none ran in init %d, not in the one started ahead for it (%d)", pgid, second)
	}
}

// aheadPool is a pool of one shim that starts its step's init ahead as k
// says, started at once and closed at the test's end.
func aheadPool(t *testing.T, bin string, k InitAhead) *ShimPool {
	t.Helper()
	return startedPool(t, bin, 1, &k)
}

// inOut makes the step's in/ and out/ folders, its /input and /output.
func (s step) inOut(t testing.TB) (in, out string) {
	t.Helper()
	in, out = filepath.Join(s.dir, "in"), filepath.Join(s.dir, "out")
	for _, d := range []string{in, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return in, out
}

func mountNS(t *testing.T, pid int) string {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// readyInitOf waits for the pool's idle shim and the init it starts ahead,
// and returns the init's pid.
func readyInitOf(t *testing.T, pool *ShimPool) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pool.mu.Lock()
		var shim int
		if len(pool.idle) > 0 {
			shim = pool.idle[0].cmd.Process.Pid
		}
		pool.mu.Unlock()
		if shim != 0 {
			if pid := childWithArg(shim, initArg); pid != 0 {
				return pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no idle shim with an init started ahead")
	return 0
}

// childWithArg is a child of pid whose argv[1] is arg, or 0.
func childWithArg(pid int, arg string) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid)) // a bad pattern only
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			cmdline, err := os.ReadFile("/proc/" + c + "/cmdline")
			if err != nil {
				continue
			}
			if args := strings.Split(string(cmdline), "\x00"); len(args) > 1 && args[1] == arg {
				n, _ := strconv.Atoi(c)
				return n
			}
		}
	}
	return 0
}

// isZombie says whether pid has ended and waits to be reaped.
func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// rootCgroups returns this machine's cgroups and a parent folder of the
// test's own in them (removed at its end), or skips: the tests below make
// real cgroups, which needs root.
func rootCgroups(t *testing.T, name string) (Cgroups, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes real cgroups")
	}
	cg, err := DetectCgroups()
	if err != nil {
		t.Skipf("no cgroups: %v", err)
	}
	parent := fmt.Sprintf("jobfs-test-%s-%d", name, os.Getpid())
	t.Cleanup(func() {
		if err := cg.Clean(parent); err != nil {
			t.Errorf("remove the test's cgroups: %v", err)
		}
	})
	return cg, parent
}

// TestCgroupPlan: what an init started ahead is told to join and verify
// before its step's cgroup exists is what the cgroup, once made, gives.
func TestCgroupPlan(t *testing.T) {
	cg, parent := rootCgroups(t, "plan")
	rel := parent + "/run/step"
	join, paths := cg.plan(rel)
	g, err := cg.Create(rel, Limits{Pids: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Delete() }() // empty: nothing joined it
	want := g.JoinFiles()
	if len(want) == 0 { // v2: an init started ahead moves itself into cgroup.procs
		want = []string{filepath.Join(g.Dir(), "cgroup.procs")}
	}
	if fmt.Sprint(join) != fmt.Sprint(want) {
		t.Errorf("planned join files %v, the cgroup's %v", join, want)
	}
	if fmt.Sprint(paths) != fmt.Sprint(g.Paths()) {
		t.Errorf("planned paths %v, the cgroup's %v", paths, g.Paths())
	}
	for _, f := range join {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("planned join file: %v", err)
		}
	}
}

// TestShimPoolInitAheadCgroupFails: an init started ahead is handed its
// step before the step's cgroup is made; when the cgroup cannot be made,
// the step does not start, the reason is the cgroup's, and the init ends.
func TestShimPoolInitAheadCgroupFails(t *testing.T) {
	cg, parent := rootCgroups(t, "aheadfail")
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pool := aheadPool(t, bin, InitAhead{Init: bin, Namespaces: true})
	ready := readyInitOf(t, pool)
	s := newStep(t, "#!/bin/sh\necho started\n")
	in, out := s.inOut(t)
	sp := s.shimmed(t)
	sp.Shim.Pool = pool
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	sp.Isolation = &Isolation{Init: bin, UID: uid, GID: gid, Namespaces: true, Cgroups: cg, Group: parent + "/step",
		Limits: Limits{IOBps: 1 << 20, Device: "no-such-disk"}, // refused when the cgroup is made
		Input:  in, Output: out, App: s.dir}
	r := runBounded(t, context.Background(), sp)
	if r.Outcome != NotStarted || r.Err == nil || !strings.Contains(r.Err.Error(), "cannot apply the limits") {
		t.Fatalf("Run = %+v, want NotStarted: cannot apply the limits", r)
	}
	if log := s.readLog(t); strings.Contains(log, "started") {
		t.Errorf("the step ran: log %q", log)
	}
	eventually(t, "the init started ahead ends", func() bool { return syscall.Kill(ready, 0) != nil || isZombie(ready) })
}

// TestStepBusyProgramRetried: a step whose program is open for writing when
// it is started ("text file busy", as when a process forked while the
// daemon wrote the file still holds it) starts once the writer lets go,
// through its init or without one; one kept open fails with that reason.
func TestStepBusyProgramRetried(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name           string
		isolated, keep bool
	}{{"init", true, false}, {"no init", false, false}, {"kept busy", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			s := newStep(t, "#!/bin/sh\necho started\n")
			w, err := os.OpenFile(s.path, os.O_WRONLY, 0) // the step's program stays busy while open
			if err != nil {
				t.Fatal(err)
			}
			if c.keep {
				defer func() { _ = w.Close() }() // opened for writing nothing
			} else {
				time.AfterFunc(50*time.Millisecond, func() { _ = w.Close() })
			}
			sp := s.spec()
			if c.isolated {
				sp.Isolation = &Isolation{Init: bin, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
			}
			r := runBounded(t, context.Background(), sp)
			switch {
			case c.keep:
				if r.Outcome != NotStarted || r.Err == nil || !strings.Contains(r.Err.Error(), "text file busy") {
					t.Errorf("program kept busy: Run = %+v, want NotStarted, text file busy", r)
				}
			case r.Outcome != Exited || r.ExitCode != 0:
				t.Errorf("program busy for 50 ms: Run = %+v, want Exited 0", r)
			case !strings.Contains(s.readLog(t), "started"):
				t.Errorf("program busy for 50 ms: log = %q", s.readLog(t))
			}
		})
	}
}

// TestReadyInitSignalWhileWaiting: an init started ahead catches SIGTERM
// from its start (signal.Notify before its spec, off the trigger's path);
// one that came while it waited is not its step's: the step, held for its
// start time, starts in that init all the same.
func TestReadyInitSignalWhileWaiting(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pool := aheadPool(t, bin, InitAhead{Init: bin})
	ready := readyInitOf(t, pool)
	// The runtime catches SIGTERM from its start (and dies of it without a
	// Notify): the init is past its Notify once it waits on its spec pipe.
	deadline := time.Now().Add(10 * time.Second)
	for !readingPipe(ready) {
		if time.Now().After(deadline) {
			t.Fatalf("the init started ahead (%d) does not wait on its spec", ready)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(ready, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The runtime forwards a signal to its channel from a goroutine of its
	// own: one still on its way when the spec arrives is the step's (the
	// two are one moment to whoever sent it). Let it arrive.
	time.Sleep(300 * time.Millisecond)
	s := newStep(t, "#!/bin/sh\necho started\n")
	sp := s.shimmed(t)
	sp.Shim.Pool = pool
	sp.Isolation = &Isolation{Init: bin, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	sp.NotBefore = time.Now().Add(200 * time.Millisecond)
	var pgid int
	sp.Started = func(p int, _ uint64, _ time.Time) { pgid = p }
	r := runBounded(t, context.Background(), sp)
	if r.Outcome != Exited || r.ExitCode != 0 || r.Err != nil {
		t.Fatalf("Run = %+v, want Exited 0 (a signal before the step is not the step's); log:\n%s", r, s.readLog(t))
	}
	pgid = startedPgid(r, pgid)
	if pgid != ready {
		t.Errorf("the step's init is %d, want the one started ahead (%d)", pgid, ready)
	}
}

// readingPipe says whether process pid's first thread waits in a read of
// a pipe.
func readingPipe(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/wchan", pid, pid))
	return err == nil && strings.Contains(string(b), "pipe_read")
}

// TestAheadFoldersPrivate: the step's folders handed to an init that built
// its root ahead are private mounts in the step, as binds are, even when
// the folders are on a shared mount (systemd makes / shared): nothing the
// host mounts there later reaches the step.
func TestAheadFoldersPrivate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a root built ahead needs root")
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := newStep(t, "#!/bin/sh\ngrep -E ' /(input|output|app) ' /proc/self/mountinfo\n")
	if err := syscall.Mount(s.dir, s.dir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(s.dir, syscall.MNT_DETACH) }) // before TempDir's removal
	if err := syscall.Mount("", s.dir, "", syscall.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	in, out := s.inOut(t)
	pool := aheadPool(t, bin, InitAhead{Init: bin, Namespaces: true})
	sp := s.shimmed(t)
	sp.Shim.Pool = pool
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	sp.Isolation = &Isolation{Init: bin, UID: uid, GID: gid, Namespaces: true, Input: in, Output: out, App: s.dir}
	readyInitOf(t, pool)
	r := runBounded(t, context.Background(), sp)
	log := s.readLog(t)
	if r.Outcome != Exited || r.ExitCode != 0 {
		t.Fatalf("Run = %+v, want Exited 0; log:\n%s", r, log)
	}
	if strings.Count(log, "\n") != 3 || strings.Contains(log, "shared:") || strings.Contains(log, "master:") {
		t.Errorf("the step's folders, want three private mounts:\n%s", log)
	}
}

// TestAheadInitSilent: an init started ahead that never says it built the
// root (one of an older build, or one stuck) is given up after aheadFor:
// the step starts an init of its own, whose failure is the step's, and no
// trigger waits for ever.
func TestAheadInitSilent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a root built ahead needs root")
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(t.TempDir(), "old-init")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n[ \"$2\" = "+stepinit.RootAheadArg+" ] && exec sleep 60\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pool := aheadPool(t, bin, InitAhead{Init: fake, Namespaces: true})
	var ready int // the silent init: sleep, args[1] "60"
	eventually(t, "the pool starts its silent init", func() bool {
		pool.mu.Lock()
		defer pool.mu.Unlock()
		if len(pool.idle) > 0 {
			ready = childWithArg(pool.idle[0].cmd.Process.Pid, "60")
		}
		return ready != 0
	})
	s := newStep(t, "#!/bin/sh\nexit 0\n")
	in, out := s.inOut(t)
	sp := s.shimmed(t)
	sp.Shim.Pool = pool
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	sp.Isolation = &Isolation{Init: fake, UID: uid, GID: gid, Namespaces: true, Input: in, Output: out, App: s.dir}
	began := time.Now()
	r := runBounded(t, context.Background(), sp)
	if r.Outcome != NotStarted || r.Err == nil || !strings.Contains(r.Err.Error(), "ended before starting the step") {
		t.Errorf("Run = %+v, want NotStarted by the init of its own", r)
	}
	if took := time.Since(began); took < aheadFor {
		t.Errorf("Run took %s: the silent init was not the one waited for", took)
	}
	if err := syscall.Kill(ready, 0); err == nil {
		t.Errorf("the silent init %d started ahead was left running", ready)
	}
}
