//go:build linux

package integration

// Shell helpers: what a test runs in the mount, and how it waits for runs.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// result is what a shell command left: its exit code and output.
type result struct {
	script   string
	out, err string
	code     int
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\nexit %d\nstdout: %q\nstderr: %q", r.script, r.code, r.out, r.err)
}

// sh runs script with sh (bash in POSIX mode, see the package doc) in the
// daemon's folder, where mnt/ is the mount. env adds NAME=value pairs.
func (d *daemon) sh(t *testing.T, script string, env ...string) result {
	t.Helper()
	return runShell(t, d.dir, script, env...)
}

func runShell(t *testing.T, dir, script string, env ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/bash", "-c", script)
	cmd.Args[0] = "sh"
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"LC_ALL=C", "LANG=C"}, env...)...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{script: script, out: stdout.String(), err: stderr.String(), code: exitCode(err)}
	if ctx.Err() != nil {
		t.Fatalf("shell command did not end within %v:\n%s", shTimeout, r)
	}
	if r.code == -1 {
		t.Fatalf("shell command: %v\n%s", err, r)
	}
	return r
}

// ok runs script and fails the test unless it exits 0; it returns stdout.
func (d *daemon) ok(t *testing.T, script string, env ...string) string {
	t.Helper()
	r := d.sh(t, script, env...)
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	return r.out
}

// fails runs script and fails the test unless it exits non-zero with
// wantErr in its stderr; it returns the result.
func (d *daemon) fails(t *testing.T, script, wantErr string, env ...string) result {
	t.Helper()
	r := d.sh(t, script, env...)
	if r.code == 0 || !strings.Contains(r.err, wantErr) {
		t.Errorf("want a non-zero exit and %q on stderr:\n%s", wantErr, r)
	}
	return r
}

// cat returns the content of a file below the daemon's folder (mnt/...).
func (d *daemon) cat(t *testing.T, path string) string {
	t.Helper()
	return d.ok(t, `cat "$P"`, "P="+path)
}

// wantFile fails the test unless cat of path prints want.
func (d *daemon) wantFile(t *testing.T, path, want string) {
	t.Helper()
	if got := d.cat(t, path); got != want {
		t.Errorf("cat %s = %q, want %q", path, got, want)
	}
}

// scriptJob makes job mnt/name of type script running script.
func (d *daemon) scriptJob(t *testing.T, name, script string) {
	t.Helper()
	d.ok(t, `mkdir "mnt/$J" && echo script > "mnt/$J/config/type" && printf '%s' "$S" > "mnt/$J/config/script"`,
		"J="+name, "S="+script)
}

// trigger writes payload to the job's data file.
func (d *daemon) trigger(t *testing.T, job, payload string) {
	t.Helper()
	d.ok(t, `printf '%s\n' "$P" > "mnt/$J/data"`, "J="+job, "P="+payload)
}

var terminal = []string{"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED"}

// waitRun polls `cat runs/N/status` until the run has ended and returns
// its status.
func (d *daemon) waitRun(t *testing.T, job string, id int) string {
	t.Helper()
	return d.waitStatus(t, job, id, terminal...)
}

// waitStatus polls `cat runs/N/status` until it is one of want.
func (d *daemon) waitStatus(t *testing.T, job string, id int, want ...string) string {
	t.Helper()
	path := fmt.Sprintf("mnt/%s/runs/%d/status", job, id)
	var last string
	for deadline := time.Now().Add(runTimeout); time.Now().Before(deadline); time.Sleep(pollEvery) {
		cmd := exec.Command("cat", path)
		cmd.Dir = d.dir
		out, err := cmd.Output()
		if last = strings.TrimSpace(string(out)); err == nil {
			for _, w := range want {
				if last == w {
					return last
				}
			}
		}
	}
	t.Fatalf("%s: still %q after %v, want one of %v", path, last, runTimeout, want)
	return ""
}

// waitFor polls cond until it holds; what describes it on failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !eventually(runTimeout, cond) {
		t.Fatalf("%s: not within %v", what, runTimeout)
	}
}

// eventually polls cond for up to limit and reports whether it held.
func eventually(limit time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(pollEvery) {
		if cond() {
			return true
		}
	}
	return false
}

var (
	markerMu sync.Mutex
	markerN  int
)

// sleepArgs returns arguments for sleep(1) that add up to about an hour (a
// loaded machine has taken more than 300 s over a test that holds one) and
// make the process unique on this machine: pgrep -f finds exactly it.
func sleepArgs() string {
	markerMu.Lock()
	defer markerMu.Unlock()
	markerN++
	return fmt.Sprintf("3600 0.%05d%03d", os.Getpid()%100000, markerN)
}

// pgrep lists the processes whose command line contains `sleep <args>`.
// The [s] keeps the pattern from matching the shell that runs pgrep.
func (d *daemon) pgrep(t *testing.T, args string) string {
	t.Helper()
	r := d.sh(t, `pgrep -a -f "[s]leep $A" || true`, "A="+args)
	return strings.TrimSpace(r.out)
}
