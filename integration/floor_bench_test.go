//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The floor baselines: testdata/isofloor.c does, as bare system calls from
// one C program, what the guarantees of an isolated jobfs run demand at the
// least (a bbolt-like durable commit of the queued run and of its verdict,
// a fresh cgroup in each controller jobfs uses with limits, fresh pid, ipc,
// uts and mount namespaces, the step's root built as jobfs-init builds it,
// pivot_root, the step forked, exec'd and reaped and its code told; the
// init's exit, which tears its namespaces down, and the cgroup's removal
// come after the verdict, as in jobfs). It is
// what no program doing those things can go below on this machine, whatever
// its design: the floor a row of the table is held against when it stays
// short of its goal.

// benchFloorResult is one isofloor measure.
type benchFloorResult struct {
	runs          int
	secs          float64
	cpuMSPerRun   float64
	p50MS, p99MS  float64
	runsPerSecond float64
	cgroups       string
}

// benchFloor builds and runs isofloor with workers processes of runs runs
// each, in mode: "" (all of it), "prepared" (each run's cgroup and
// namespaces and root made before its clock starts, as a perfect pool of
// ready sandboxes would), "noroot" (no root built) or "commits" (the run's
// two durable commits alone). ok is false
// (and why logged) where it cannot run: not root, no C compiler.
func benchFloor(b *testing.B, workers, runs int, mode string) (benchFloorResult, bool) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Log("floor: needs root (cgroups and namespaces as jobfs makes them for root)")
		return benchFloorResult{}, false
	}
	if _, err := exec.LookPath("cc"); err != nil {
		b.Log("floor: no C compiler (cc) to build testdata/isofloor.c: its baselines are left out")
		return benchFloorResult{}, false
	}
	bin, err := isofloorBinary()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cg := benchFloorCgroups()
	b.Cleanup(func() { benchFloorCleanup(cg) })
	args := []string{filepath.Join(dir, "state"), cg, strconv.Itoa(workers), strconv.Itoa(runs)}
	if mode != "" {
		args = append(args, mode)
	}
	if err := os.Mkdir(args[0], 0o755); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("isofloor %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	r := benchFloorResult{cgroups: cg}
	if _, err := fmt.Sscanf(string(out), "runs %d secs %g cpu_ms_per_run %g p50_ms %g p99_ms %g",
		&r.runs, &r.secs, &r.cpuMSPerRun, &r.p50MS, &r.p99MS); err != nil {
		b.Fatalf("isofloor said %q: %v", out, err)
	}
	r.runsPerSecond = float64(r.runs) / r.secs
	return r, true
}

// isofloorBinary builds testdata/isofloor.c once per test binary, in the
// suite's folder, as plainJobfs builds jobfs.
var isofloorBinary = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(suiteDir, "isofloor")
	if out, err := exec.Command("cc", "-O2", "-o", bin, "testdata/isofloor.c").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build isofloor: %v\n%s", err, out)
	}
	return bin, nil
})

// benchFloorCgroups is isofloor's cgroup argument for this machine: the v1
// controllers where they are mounted (as jobfs uses them), else cgroup v2.
func benchFloorCgroups() string {
	if _, err := os.Stat("/sys/fs/cgroup/memory/tasks"); err == nil {
		return "v1:/sys/fs/cgroup"
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "v2:/sys/fs/cgroup"
	}
	return "none"
}

// benchFloorCleanup removes what a failed isofloor left of its cgroups
// (its inits end when their worker does: they read EOF).
func benchFloorCleanup(cg string) {
	var parents []string
	switch {
	case strings.HasPrefix(cg, "v1:"):
		parents, _ = filepath.Glob(filepath.Join(cg[3:], "*", "jobfs-floor"))
	case strings.HasPrefix(cg, "v2:"):
		parents = []string{filepath.Join(cg[3:], "jobfs-floor")}
	}
	for _, p := range parents {
		kids, _ := filepath.Glob(filepath.Join(p, "*-*"))
		for _, k := range kids {
			_ = os.Remove(k) // best effort: an empty cgroup folder goes
		}
		_ = os.Remove(p)
	}
}

// benchCPU returns the CPU seconds the daemon and the children it reaped
// (shims, and through them inits and steps) have used.
func benchCPU(b *testing.B, d *daemon) float64 {
	b.Helper()
	self, reaped, ok := procCPU(d.cmd.Process.Pid)
	if !ok {
		b.Fatalf("the daemon's /proc/%d/stat cannot be read", d.cmd.Process.Pid)
	}
	return self + reaped
}
