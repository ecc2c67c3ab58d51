//go:build linux

package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// fuseOps is the count of FUSE requests of kind op the daemon has
// answered, from MOUNT/.jobfs/metrics.
func fuseOps(t *testing.T, d *daemon, op string) int {
	t.Helper()
	n, err := fuseOpsIn(d.cat(t, "mnt/.jobfs/metrics"), op)
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// fuseOpsIn sums jobfs_fuse_operations_total of op in metrics text.
func fuseOpsIn(text, op string) (float64, error) {
	sum := 0.0
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "jobfs_fuse_operations_total{") || !strings.Contains(l, `op="`+op+`"`) {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %v", l, err)
		}
		sum += v
	}
	return sum, nil
}

// TestReadCloseNoFlush: closing a file that was only read (a computed
// file, a log, wait, .jobfs/metrics) costs no FLUSH round trip to the
// daemon on a kernel that honours FOPEN_NOFLUSH (5.16+); a close of data
// after a write still does, and starts the run.
func TestReadCloseNoFlush(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "nf", "#!/bin/sh\necho hello\n")
	d.trigger(t, "nf", "{}")
	if st := d.waitRun(t, "nf", 1); st != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED", st)
	}
	before := fuseOps(t, d, "flush")
	for i := 0; i < 3; i++ {
		for _, f := range []string{"runs/1/status", "runs/1/wait", "runs/1/log", "runs/1/exit_code", "log", "config/type"} {
			b, err := os.ReadFile(d.mnt + "/nf/" + f)
			if err != nil {
				t.Fatalf("read %s: %v", f, err)
			}
			if want := map[string]string{"runs/1/wait": "COMPLETED\n", "runs/1/log": "hello\n", "config/type": "script\n"}[f]; want != "" && string(b) != want {
				t.Errorf("read %s = %q, want %q", f, b, want)
			}
		}
	}
	flushes := fuseOps(t, d, "flush") - before
	if kernelAtLeast(5, 16) && flushes != 0 {
		t.Errorf("closes of files only read took %d FLUSH requests, want none", flushes)
	}
	t.Logf("%d FLUSH requests for 18 closes of files only read", flushes)
	before = fuseOps(t, d, "flush")
	d.trigger(t, "nf", "{}")
	if got := fuseOps(t, d, "flush") - before; got < 1 {
		t.Errorf("a write of data took %d FLUSH requests, want its close's", got)
	}
	if st := d.waitRun(t, "nf", 2); st != "COMPLETED" {
		t.Fatalf("run 2 ended %s, want COMPLETED", st)
	}
}

// kernelAtLeast reports whether the running kernel is major.minor or later.
func kernelAtLeast(major, minor int) bool {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return false
	}
	parts := strings.SplitN(strings.TrimSpace(string(b)), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (ma > major || ma == major && mi >= minor)
}
