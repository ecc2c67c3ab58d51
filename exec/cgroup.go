package exec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

// Limits are what one step may use. Zero means no limit.
type Limits struct {
	CPUPercent int64  // percent of one core: 50 = half a core, 200 = two cores
	MemoryMiB  int64  // hard limit; past it the kernel's OOM killer ends the step
	IOBps      uint64 // bytes/s, read and write each, on Device
	Pids       int64  // processes and threads, the step's init included
	Device     string // "major:minor" of the disk the step writes to
	// NoNetwork gives the step a network namespace with only lo
	// (config/network none); not a cgroup limit: the namespaces apply it.
	NoNetwork bool
}

// Cgroups creates one control group per step below a jobfs parent.
//
// Hierarchies: a pure v2 host (unified, /sys/fs/cgroup/cgroup.controllers
// lists the controllers) uses cgroup2; a hybrid host whose v2 mount has no
// controllers, like a legacy one, uses the v1 controllers cpu, cpuacct,
// memory, pids, blkio and freezer. Both go through containerd/cgroups/v3.
// Spare is the name of the folder Recycle leaves beside a finished run's:
// on cgroup v1 a rename costs a fraction of a mkdir, which makes a folder
// of files in each of the six hierarchies, and of an rmdir. On a 2-core VM
// the trigger of /bin/true was 0.8 ms faster at the p50 in A/B rounds that
// took turns, 0 to 1.0 ms in rounds of blocks (this VM's noise is as
// large); the CPU saved shows in runs/s. No run is called so: run folders
// are numbers.
const Spare = "spare"

// onceMoreIfGone makes a group with mk, and once more when a folder above
// it was removed as it was made (ENOENT): the machine's jobfs folder, which
// a stopping daemon removes once no daemon has a folder in it.
func onceMoreIfGone[T any](mk func() (T, error)) (T, error) {
	g, err := mk()
	if errors.Is(err, fs.ErrNotExist) {
		return mk()
	}
	return g, err
}

type Cgroups interface {
	// Create makes the cgroup at rel (e.g. "jobfs/<instance>/<job>/<run>/<step>") with
	// limits applied; an error means a limit could not be applied.
	Create(rel string, l Limits) (Group, error)
	// Version is 1 or 2.
	Version() int
	// Clean kills every process below parent and removes its cgroups:
	// what a crashed daemon left.
	Clean(parent string) error
	// Prune removes the cgroup folder dir if it is empty (a job's folder
	// once its last run has ended); it never kills anything.
	Prune(dir string)
	// PruneBelow removes each empty folder just below parent (the jobs'
	// folders kept for their next runs, with their Spare); it never kills
	// anything.
	PruneBelow(parent string)
	// Recycle renames dir, a finished run's folder with no step's left in
	// it, to its sibling Spare in every hierarchy, for Reuse to make it a
	// next run's; an error (nothing renamed) when it cannot: cgroup v2
	// renames no cgroup, a step's folder is left, a spare is there.
	Recycle(dir string) error
	// Reuse renames the Spare beside dir, if there is one, to dir.
	Reuse(dir string)
	// plan tells, before the cgroup at rel is made, what its Group will
	// give an init to join and verify: JoinFiles (on v2, the cgroup.procs
	// an init started ahead moves itself into) and Paths. An init started
	// ahead is then handed its step first and prepares while it is made.
	plan(rel string) (join []string, paths map[string]string)
	// mounts are the folders of the hierarchies its groups are made in,
	// as the paths of plan's join files begin: an init that builds its
	// root ahead opens them before it leaves the host's mounts.
	mounts() []string
}

// Group is one step's cgroup.
type Group interface {
	// JoinFiles are the files a process writes "0" to in order to join
	// (v1: one cgroup.procs per controller); empty on v2, where the process
	// is cloned straight into Dir (CLONE_INTO_CGROUP, Linux 5.7+).
	JoinFiles() []string
	// Dir is the cgroup's folder (v2: opened for SysProcAttr.CgroupFD).
	Dir() string
	// Paths are what /proc/<pid>/cgroup must show for a member, by
	// controller (v1) or "" (v2), so the init can verify before it execs.
	Paths() map[string]string
	// Signal sends sig to every process in the group.
	Signal(sig syscall.Signal) error
	// Kill kills every process in the group, including ones that forked
	// meanwhile: v2 cgroup.kill (Linux 5.14+), else freeze, SIGKILL, thaw.
	Kill() error
	// OOMKilled reports whether the kernel's OOM killer killed a member.
	OOMKilled() bool
	// Usage reads what the group used, once its processes are gone; it is
	// read before Delete, which loses the counters.
	Usage() Usage
	// Counters reads them at once: for a group whose step's processes are
	// known gone, with only its init left, exiting.
	Counters() Usage
	// Delete removes the group once it is empty (waits briefly for that).
	Delete() error
}

// ErrNoCgroups means no cgroup hierarchy jobfs can write to was found.
var ErrNoCgroups = errors.New("no writable cgroup hierarchy")

// DetectCgroups picks the hierarchy of this host and the subtree of it this
// daemon manages (see delegateV2, delegateV1): all of it as root outside a
// unit, its own unit's subtree under systemd, a delegated subtree for a
// normal user. It fails with ErrNoCgroups (wrapped with the reason) where
// there is none.
func DetectCgroups() (Cgroups, error) {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return newV2(realCgroupHost("/sys/fs/cgroup"))
	case cgroups.Legacy, cgroups.Hybrid:
		return newV1(realCgroupHost(v1Root))
	}
	return nil, fmt.Errorf("%w: /sys/fs/cgroup is not mounted", ErrNoCgroups)
}

// DeviceOf returns "major:minor" of the whole disk holding path, resolving
// a partition to its disk: block I/O is throttled per disk, and the disk
// is the one the step really writes to (not a hard-coded 8:0).
func DeviceOf(path string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "", err
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	sys := "/sys/dev/block/" + dev
	if _, err := os.Stat(sys); err != nil {
		return "", fmt.Errorf("%s is on %s, which is not a block device (overlay, tmpfs or a network file system): io cannot be limited there", path, dev)
	}
	if _, err := os.Stat(sys + "/partition"); err == nil {
		if b, err := os.ReadFile(sys + "/../dev"); err == nil {
			dev = strings.TrimSpace(string(b))
		}
	}
	return dev, nil
}

func splitDevice(dev string) (int64, int64, error) {
	a, b, ok := strings.Cut(dev, ":")
	maj, err1 := strconv.ParseInt(a, 10, 64)
	min, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad device %q", dev)
	}
	return maj, min, nil
}

// readPids lists the pids in a cgroup.procs file.
func readPids(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// waitEmpty polls a cgroup.procs file until it lists no process.
func waitEmpty(procs string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		pids, err := readPids(procs)
		if err != nil || len(pids) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// removeTree removes empty cgroup folders below and including dir,
// deepest first (cgroup folders are removed with rmdir, never unlink).
func removeTree(dir string) error {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			_ = removeTree(filepath.Join(dir, e.Name())) // what is left fails the rmdir of dir below
		}
	}
	err := syscall.Rmdir(dir)
	if err == syscall.ENOENT {
		return nil
	}
	return err
}

// fileExists says whether a cgroup file is there (a controller's optional
// file, such as swap accounting's).
func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
