//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// FUSE passthrough (issue 20): a finished run's log, result and output
// files are read by the kernel from the state folder when the daemon may
// register them (root, Linux 6.9+), through the daemon otherwise; the
// bytes are the same either way, and a live log is always read through the
// daemon (tail -f).

// fuseReads is the count of FUSE reads the daemon has answered, from
// MOUNT/.jobfs/metrics.
func fuseReads(t *testing.T, d *daemon) int { return fuseOps(t, d, "read") }

// TestPassthroughFinishedFiles: the finished run's log and its output file
// read through the mount are the bytes on disk; as root on a kernel with
// passthrough, no read reaches the daemon (reading .jobfs/metrics itself
// takes reads: counted out), while a live log's reads do.
func TestPassthroughFinishedFiles(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "pt", "#!/bin/sh\nseq 1 200000\nseq 1 5000 > /output/out.txt\necho live\nsleep 2\necho done\n")
	d.trigger(t, "pt", "{}")
	if st := d.waitStatus(t, "pt", 1, append([]string{"RUNNING"}, terminal...)...); st == "RUNNING" {
		first := fuseReads(t, d)
		before := fuseReads(t, d)
		d.cat(t, "mnt/pt/runs/1/log")
		if got := fuseReads(t, d) - before - (before - first); got < 1 {
			t.Errorf("cat of a live log: %d FUSE reads, want it read through the daemon", got)
		}
	}
	if st := d.waitRun(t, "pt", 1); st != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED; log:\n%s", st, d.cat(t, "mnt/pt/runs/1/log"))
	}
	short := strings.TrimSpace(d.cat(t, "mnt/pt/shortname"))
	run := filepath.Join(d.state, "jobs", short, "runs", "1")
	// Reading the metrics costs reads of its own, counted out.
	first := fuseReads(t, d)
	before := fuseReads(t, d)
	own := before - first
	for _, f := range []string{"log", "output/out.txt", "result"} {
		disk, err := os.ReadFile(filepath.Join(run, f))
		if f == "result" && os.IsNotExist(err) {
			disk, err = os.ReadFile(filepath.Join(run, "output/out.txt"))
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ { // the second open shares the backing file
			if got := d.cat(t, "mnt/pt/runs/1/"+f); got != string(disk) {
				t.Errorf("cat runs/1/%s: %d bytes, the file on disk %d: they differ", f, len(got), len(disk))
			}
		}
	}
	reads := fuseReads(t, d) - before - own
	if os.Geteuid() == 0 && passthroughKernel() {
		if reads != 0 {
			t.Errorf("as root on a kernel with FUSE passthrough, the finished files took %d FUSE reads, want none", reads)
		}
	}
	t.Logf("finished files: %d FUSE reads (0: passthrough)", reads)
	// Tools size their reads by st_blksize: cat reads these in 1 MiB.
	for _, f := range []string{"log", "output/out.txt"} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(d.mnt, "pt/runs/1", f), &st); err != nil {
			t.Fatal(err)
		}
		if st.Blksize != 1<<20 {
			t.Errorf("runs/1/%s: st_blksize %d, want 1 MiB", f, st.Blksize)
		}
	}
}

// passthroughKernel reports whether the kernel has FUSE passthrough: Linux
// 6.9 or later (CONFIG_FUSE_PASSTHROUGH is assumed).
func passthroughKernel() bool { return kernelAtLeast(6, 9) }
