package stepinit

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// v1Pids makes a cgroup in the v1 pids hierarchy for the test (removed at
// its end) and returns its folder and the hierarchy's mount point; it
// skips where there is none or the test is not root.
func v1Pids(tb testing.TB) (dir, mount string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: makes a real cgroup")
	}
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.FSType != "cgroup" || !strings.Contains(","+m.VFSOptions+",", ",pids,"), false
	})
	if err != nil || len(mounts) == 0 {
		tb.Skipf("no v1 pids hierarchy here (%v)", err)
	}
	mount = mounts[0].Mountpoint
	dir = filepath.Join(mount, fmt.Sprintf("jobfs-test-join-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			tb.Errorf("remove the test's cgroup: %v", err)
		}
	})
	return dir, mount
}

// threadIn is the calling thread's cgroup in the pids hierarchy.
func threadIn(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && strings.Contains(","+parts[1]+",", ",pids,") {
			return parts[2]
		}
	}
	tb.Fatalf("no pids line in %q", b)
	return ""
}

// TestCgroupRootsJoin: an init started ahead joins its step's cgroup
// through the hierarchy folders it was given and opened before it left the
// host's mounts, its own thread alone (tasks), as joinThread does; a
// folder may be a link to the mount (/sys/fs/cgroup/cpu to cpu,cpuacct).
func TestCgroupRootsJoin(t *testing.T) {
	dir, mount := v1Pids(t)
	alias := filepath.Join(t.TempDir(), "pids")
	if err := os.Symlink(mount, alias); err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	home := threadIn(t)
	roots, err := openCgroupRoots([]string{alias})
	if err != nil {
		t.Fatal(err)
	}
	defer roots.close()
	joinErr := roots.join(filepath.Join(alias, filepath.Base(dir), "cgroup.procs"))
	joined := threadIn(t)
	if err := roots.join(filepath.Join(alias, home, "cgroup.procs")); err != nil {
		t.Fatalf("back to %s: %v", home, err) // the thread stays locked: the runtime ends it
	}
	runtime.UnlockOSThread()
	if joinErr != nil {
		t.Fatal(joinErr)
	}
	if want := "/" + filepath.Base(dir); joined != want {
		t.Errorf("joined %s, want %s", joined, want)
	}
	procs, err := os.ReadFile(filepath.Join(dir, "tasks"))
	if err != nil || len(strings.TrimSpace(string(procs))) != 0 {
		t.Errorf("left in the cgroup: %q (%v)", procs, err)
	}
	if err := roots.join(filepath.Join(mount, filepath.Base(dir), "cgroup.procs")); err == nil {
		t.Error("joined through a folder it was not given")
	}
	// Not cleaned: the name climbs out of the folder below it (RESOLVE_BENEATH).
	if err := roots.join(alias + "/" + filepath.Base(dir) + "/../../cgroup.procs"); err == nil {
		t.Error("joined through .. out of the folder it was given")
	}
}

// BenchmarkCgroupJoin: a thread moved into a v1 cgroup by itself (writing
// "0", as jobfs-init does) and by another thread (its id, as a shim could
// for the init): the kernel moves a task other than the writer only under
// its threadgroup lock taken for writing, which waits out an RCU grace
// period. Each join follows 20 ms of quiet, as a trigger's does (joins in
// a row share one grace period).
func BenchmarkCgroupJoin(b *testing.B) {
	dir, mount := v1Pids(b)
	for _, byID := range []bool{false, true} {
		name := map[bool]string{false: "self", true: "by-id"}[byID]
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread() // a benchmark's own goroutine
			defer runtime.UnlockOSThread()
			home := filepath.Join(mount, threadIn(b), "tasks")
			id := "0"
			if byID { // its own id: what counts is that it is not "0"
				id = strconv.Itoa(unix.Gettid())
			}
			var took time.Duration
			for i := 0; i < b.N; i++ {
				time.Sleep(20 * time.Millisecond)
				t0 := time.Now()
				if err := os.WriteFile(filepath.Join(dir, "tasks"), []byte(id), 0); err != nil {
					b.Fatal(err)
				}
				took += time.Since(t0)
				if err := os.WriteFile(home, []byte("0"), 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(took.Microseconds())/float64(b.N), "us/join")
		})
	}
}
