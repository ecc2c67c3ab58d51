package exec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The cgroup delegation logic runs here against a fake cgroup tree in a
// temporary folder: plain files stand for cgroup.procs,
// cgroup.subtree_control and cgroup.controllers, owned by a fake user. A
// real delegated cgroup v2 (systemd, Delegate=yes) is not on the test
// machine (hybrid: v1 controllers and an empty v2), so the kernel's side,
// moving a process and enabling a controller for real, is not covered here.

const (
	fakeUID = 4321 // the daemon's user in the fake tree
	fakePID = 777  // the daemon's pid
)

// fakeCgroup makes the folder of cgroup own below root with its files;
// procs lists its processes. Everything belongs to owner.
func fakeCgroup(t *testing.T, root, own string, owner int, controllers, procs, subtree string) string {
	t.Helper()
	dir := filepath.Join(root, own)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"cgroup.controllers": controllers, "cgroup.procs": procs, "cgroup.subtree_control": subtree} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(dir, name), owner, owner); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, owner, owner); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fakeHost is a cgroupHost on a fake tree whose /proc/self/cgroup reads self.
func fakeHost(t *testing.T, uid int, self string) cgroupHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the fake cgroup tree is chowned to a fake user: needs root")
	}
	tmp := t.TempDir()
	procSelf := filepath.Join(tmp, "proc-self-cgroup")
	if err := os.WriteFile(procSelf, []byte(self), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(tmp, "cgroup")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return cgroupHost{root: root, procSelf: procSelf, uid: uid, pid: fakePID}
}

// fakeKernelDirs makes the folders of rel below dir with the
// cgroup.subtree_control file that the kernel gives every cgroup, except
// the last (the step's), which Create makes.
func fakeKernelDirs(t *testing.T, dir, rel string) {
	t.Helper()
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		d := filepath.Join(dir, filepath.Join(parts[:i]...))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const userService = "/user.slice/user-4321.slice/user@4321.service/app.slice/jobfs.service"

func TestOwnCgroups(t *testing.T) {
	got := ownCgroups([]byte("12:memory:/a/b\n3:cpu,cpuacct:/c\n1:name=systemd:/d\n0::/system.slice/jobfs.service\n"))
	want := map[string]string{"memory": "/a/b", "cpu": "/c", "cpuacct": "/c", "name=systemd": "/d", "": "/system.slice/jobfs.service"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ownCgroups = %v, want %v", got, want)
	}
}

// A user service with Delegate=yes: the daemon moves itself to the leaf
// <own>/daemon, enables the controllers for the children, and its step
// cgroups are made below its own cgroup.
func TestDelegateV2UserService(t *testing.T) {
	h := fakeHost(t, fakeUID, "0::"+userService+"\n")
	dir := fakeCgroup(t, h.root, userService, fakeUID, "cpu io memory pids", "777\n", "")
	base, missing, err := h.delegateV2()
	if err != nil {
		t.Fatal(err)
	}
	if base != userService || len(missing) != 0 {
		t.Errorf("base %q missing %v, want %q and none", base, missing, userService)
	}
	if got := readFile(t, filepath.Join(dir, "daemon", "cgroup.procs")); got != "777" {
		t.Errorf("daemon/cgroup.procs = %q, want the daemon's pid 777", got)
	}
	if got := readFile(t, filepath.Join(dir, "cgroup.subtree_control")); got != "+cpu +memory +pids +io" {
		t.Errorf("cgroup.subtree_control = %q, want +cpu +memory +pids +io", got)
	}
	// The step cgroups are made in the delegated subtree: the library
	// enables controllers from there down, never in the tree's root.
	cg, err := newV2(h)
	if err != nil {
		t.Fatal(err)
	}
	fakeKernelDirs(t, dir, "jobfs/1-2/job/1/step")
	g, err := cg.Create("jobfs/1-2/job/1/step", Limits{MemoryMiB: 64, Pids: 10})
	if err != nil {
		t.Fatal(err)
	}
	wantDir := filepath.Join(dir, "jobfs/1-2/job/1/step")
	if g.Dir() != wantDir {
		t.Errorf("step cgroup at %s, want %s", g.Dir(), wantDir)
	}
	if got := g.Paths()[""]; got != userService+"/jobfs/1-2/job/1/step" {
		t.Errorf("the init verifies %q, want the path below the service", got)
	}
	if got := readFile(t, filepath.Join(wantDir, "memory.max")); got != "67108864" {
		t.Errorf("memory.max = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "jobfs/1-2/job/1/cgroup.subtree_control")); got != "+memory +pids" {
		t.Errorf("the run's cgroup.subtree_control = %q, want +memory +pids", got)
	}
	if _, err := os.Stat(filepath.Join(h.root, "cgroup.subtree_control")); err == nil {
		t.Errorf("the tree's root cgroup.subtree_control was written: jobfs must stay inside its own cgroup")
	}
	if _, err := os.Stat(filepath.Join(h.root, "jobfs")); err == nil {
		t.Errorf("a jobfs folder beside systemd's cgroups was made")
	}
}

// Root under systemd (the system unit) also stays inside its unit's
// subtree, never beside systemd's.
func TestDelegateV2RootUnit(t *testing.T) {
	own := "/system.slice/jobfs.service"
	h := fakeHost(t, 0, "0::"+own+"\n")
	dir := fakeCgroup(t, h.root, own, 0, "cpu io memory pids", "777\n", "")
	fakeCgroup(t, h.root, "/", 0, "cpu io memory pids", "1\n", "cpu io memory pids")
	base, _, err := h.delegateV2()
	if err != nil || base != own {
		t.Fatalf("base %q, %v; want %q", base, err, own)
	}
	if got := readFile(t, filepath.Join(dir, "daemon", "cgroup.procs")); got != "777" {
		t.Errorf("daemon/cgroup.procs = %q, want 777", got)
	}
}

// Root outside any unit (the root cgroup) uses the whole tree, as before.
func TestDelegateV2RootCgroup(t *testing.T) {
	h := fakeHost(t, 0, "0::/\n")
	fakeCgroup(t, h.root, "/", 0, "cpu io memory pids", "777\n", "")
	base, missing, err := h.delegateV2()
	if err != nil || base != "/" || len(missing) != 0 {
		t.Fatalf("base %q missing %v, %v; want / and none", base, missing, err)
	}
	if _, err := os.Stat(filepath.Join(h.root, "daemon")); err == nil {
		t.Errorf("the root cgroup holds processes freely: no leaf is needed")
	}
}

// A normal user in the root cgroup, or in one that is not theirs, gets the
// reason and the way out; nothing is made or written.
func TestDelegateV2NotDelegated(t *testing.T) {
	t.Run("root cgroup", func(t *testing.T) {
		h := fakeHost(t, fakeUID, "0::/\n")
		fakeCgroup(t, h.root, "/", 0, "cpu io memory pids", "777\n", "")
		_, _, err := h.delegateV2()
		if err == nil || !strings.Contains(err.Error(), "only root manages") || !strings.Contains(err.Error(), "Delegate=yes") {
			t.Errorf("err = %v, want the root cgroup refused with the way out", err)
		}
	})
	for _, file := range []string{"", "cgroup.procs", "cgroup.subtree_control"} {
		t.Run("root owns /"+file, func(t *testing.T) {
			own := "/user.slice/user-4321.slice/session-3.scope"
			h := fakeHost(t, fakeUID, "0::"+own+"\n")
			dir := fakeCgroup(t, h.root, own, fakeUID, "cpu io memory pids", "777\n", "")
			if err := os.Chown(filepath.Join(dir, file), 0, 0); err != nil {
				t.Fatal(err)
			}
			_, _, err := h.delegateV2()
			if err == nil || !strings.Contains(err.Error(), "not delegated") || !strings.Contains(err.Error(), "Delegate=yes") {
				t.Errorf("err = %v, want not delegated and the way out", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "daemon")); err == nil {
				t.Errorf("a leaf was made in a cgroup that is not the user's")
			}
			if got := readFile(t, filepath.Join(dir, "cgroup.subtree_control")); got != "" {
				t.Errorf("cgroup.subtree_control written: %q", got)
			}
		})
	}
}

// Other processes in the daemon's cgroup would keep controllers from being
// enabled below it (the kernel's no-internal-processes rule): named.
func TestDelegateV2OtherProcesses(t *testing.T) {
	h := fakeHost(t, fakeUID, "0::"+userService+"\n")
	dir := fakeCgroup(t, h.root, userService, fakeUID, "cpu io memory pids", "777\n888\n999\n", "")
	_, _, err := h.delegateV2()
	if err == nil || !strings.Contains(err.Error(), "other processes (888 999)") || !strings.Contains(err.Error(), "Delegate=yes") {
		t.Errorf("err = %v, want the other processes named and the way out", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "daemon")); err == nil {
		t.Errorf("the daemon moved to a leaf although its cgroup cannot be used")
	}
}

// Controllers the subtree does not offer are left out: the others are
// enabled, and the limits they carry are reported as not enforced.
func TestDelegateV2MissingControllers(t *testing.T) {
	h := fakeHost(t, fakeUID, "0::"+userService+"\n")
	dir := fakeCgroup(t, h.root, userService, fakeUID, "memory pids", "777\n", "")
	cg, err := newV2(h)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "cgroup.subtree_control")); got != "+memory +pids" {
		t.Errorf("cgroup.subtree_control = %q, want +memory +pids", got)
	}
	got := Unenforced(cg, Limits{CPUPercent: 100, MemoryMiB: 512, Pids: 512, IOBps: 1})
	if !strings.HasPrefix(got, "cpu, io: ") || !strings.Contains(got, "cpu, io") {
		t.Errorf("Unenforced = %q, want cpu, io and the reason", got)
	}
	if got := Unenforced(cg, Limits{MemoryMiB: 512}); got != "" {
		t.Errorf("Unenforced of a memory limit = %q, want none", got)
	}
	fakeKernelDirs(t, dir, "jobfs/i/job/1/s")
	g, err := cg.Create("jobfs/i/job/1/s", Limits{CPUPercent: 100, MemoryMiB: 64})
	if err != nil {
		t.Fatalf("a cpu limit without the cpu controller must not fail the step: %v", err)
	}
	if _, err := os.Stat(filepath.Join(g.Dir(), "cpu.max")); err == nil {
		t.Errorf("cpu.max written without the cpu controller")
	}
	h2 := fakeHost(t, fakeUID, "0::"+userService+"\n")
	fakeCgroup(t, h2.root, userService, fakeUID, "cpuset", "777\n", "")
	if _, _, err := h2.delegateV2(); err == nil || !strings.Contains(err.Error(), "none of the controllers") {
		t.Errorf("err = %v, want no usable controller", err)
	}
	if _, err := os.Stat(filepath.Join(h2.root, userService, "daemon")); err == nil {
		t.Errorf("the daemon moved to a leaf of a cgroup it cannot use")
	}
}

// Controllers already enabled are not written again; a daemon restarted
// inside its leaf uses the leaf's parent.
func TestDelegateV2Again(t *testing.T) {
	own := userService + "/daemon"
	h := fakeHost(t, fakeUID, "0::"+own+"\n")
	dir := fakeCgroup(t, h.root, userService, fakeUID, "cpu io memory pids", "", "cpu memory pids io")
	fakeCgroup(t, h.root, own, fakeUID, "cpu io memory pids", "777\n", "")
	base, _, err := h.delegateV2()
	if err != nil || base != userService {
		t.Fatalf("base %q, %v; want %q", base, err, userService)
	}
	if got := readFile(t, filepath.Join(dir, "cgroup.subtree_control")); got != "cpu memory pids io" {
		t.Errorf("cgroup.subtree_control rewritten: %q", got)
	}
}

// v1: the controllers an administrator chowned to the user (with the
// daemon started in them) are used from the daemon's own cgroup; the
// others are reported.
func TestDelegateV1(t *testing.T) {
	self := "4:memory:/jobfs-alice\n8:pids:/\n1:cpu,cpuacct:/\n0::/\n"
	h := fakeHost(t, fakeUID, self)
	fakeCgroup(t, filepath.Join(h.root, "memory"), "/jobfs-alice", fakeUID, "", "777\n", "")
	fakeCgroup(t, filepath.Join(h.root, "pids"), "/", 0, "", "777\n", "")
	fakeCgroup(t, filepath.Join(h.root, "cpu"), "/", 0, "", "777\n", "")
	base, err := h.delegateV1([]string{"cpu", "cpuacct", "memory", "pids"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(base, map[string]string{"memory": "/jobfs-alice"}) {
		t.Errorf("base = %v, want memory at /jobfs-alice only", base)
	}
	h.uid = 0
	if base, err := h.delegateV1([]string{"cpu", "memory"}); err != nil || base["cpu"] != "/" || base["memory"] != "/" {
		t.Errorf("root: base %v, %v; want every controller from /", base, err)
	}
	h.uid = fakeUID + 1
	if _, err := h.delegateV1([]string{"cpu", "memory"}); err == nil || !strings.Contains(err.Error(), "chown") {
		t.Errorf("err = %v, want the way out (an administrator's chown)", err)
	}
}

// A v1 set-up with only memory delegated enforces memory and names the rest.
func TestV1Partial(t *testing.T) {
	cg := cgroupsV1{miss: []string{"cpu", "cpuacct", "pids", "blkio", "freezer"}, why: "the cgroup v1 controllers ... are not delegated"}
	if got := Unenforced(cg, Limits{CPUPercent: 100, MemoryMiB: 512, Pids: 512}); got != "cpu, pids: the cgroup v1 controllers ... are not delegated" {
		t.Errorf("Unenforced = %q", got)
	}
	if got := Unenforced(cgroupsV1{}, Limits{CPUPercent: 100, MemoryMiB: 512, Pids: 512, IOBps: 1}); got != "" {
		t.Errorf("Unenforced with every controller = %q, want none", got)
	}
}
