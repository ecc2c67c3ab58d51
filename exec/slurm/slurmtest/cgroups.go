package slurmtest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupGlobs match the cgroup folders Slurm makes: on v1 one per
// controller (slurm_<node> on Debian's multiple-slurmd build, slurm
// otherwise), on v2 slurm* at the top or slurmstepd.scope in system.slice.
var cgroupGlobs = []string{"/sys/fs/cgroup/slurm*", "/sys/fs/cgroup/*/slurm*"}

// ofNode reports whether a Slurm cgroup folder may be node's: Debian's
// slurmd (built for several per host) names its folders slurm_<node>, and
// another node's belong to another cluster, such as the one a test of
// another package runs at the same time (go test runs packages side by
// side): killing its jobs left them RUNNING for good. A folder named
// otherwise cannot be told apart and is taken as this cluster's.
func ofNode(dir, node string) bool {
	rest, ok := strings.CutPrefix(filepath.Base(dir), "slurm_")
	return !ok || rest == node
}

// slurmCgroups lists the Slurm cgroup folders that exist now.
func slurmCgroups() map[string]bool {
	found := map[string]bool{}
	for _, g := range cgroupGlobs {
		m, err := filepath.Glob(g)
		if err != nil {
			continue // the patterns are constant and valid
		}
		for _, d := range m {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				found[d] = true
			}
		}
	}
	return found
}

// removeCgroups kills every process in the Slurm cgroup folders of node
// that were not there before (jobs, slurmstepd) and removes the folders,
// deepest first; it retries for a while as killed processes take a moment
// to leave.
func removeCgroups(before map[string]bool, node string) error {
	var roots []string
	for d := range slurmCgroups() {
		if !before[d] && ofNode(d, node) {
			roots = append(roots, d)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var left []string
		for _, r := range roots {
			left = append(left, clearTree(r)...)
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slurmtest: cgroup folders left: %s", strings.Join(left, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clearTree kills the processes in a cgroup tree, thaws frozen folders and
// removes what it can, deepest first; it returns the folders left.
func clearTree(root string) []string {
	var dirs []string
	// A walk error means a folder went away meanwhile: nothing to clear there.
	_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var left []string
	for _, d := range dirs {
		killProcs(d)
		thaw(d)
	}
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			left = append(left, d)
		}
	}
	return left
}

// killProcs sends SIGKILL to every process in one cgroup folder but this one.
func killProcs(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return // the folder is gone
	}
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL) // it may have exited already
	}
}

// thaw lets a frozen v1 freezer folder's processes die.
func thaw(dir string) {
	p := filepath.Join(dir, "freezer.state")
	b, err := os.ReadFile(p)
	if err != nil || strings.TrimSpace(string(b)) == "THAWED" {
		return
	}
	_ = os.WriteFile(p, []byte("THAWED"), 0) // best effort; rmdir retries
}
