//go:build linux

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Isolation and control (README "Isolation"): limits, stop, timeout, the
// step's private root and the cleaning of cgroups, checked through the
// mount and the cgroups the daemon makes (jobfs/<instance>/<shortname>/<run>/<step>).
//
// Every test of this file checks that the cgroups of its jobs are gone
// when it ends (and removes them, failing, when they are not), so nothing
// is left on the machine even when a test fails half-way.
//
// TestIsoCPUQuota and TestIsoTriggerCost measure time and do not run in
// parallel with the other tests of the package.

// TestIsoSteps: what a step may use and see, one job per case on one
// daemon.
func TestIsoSteps(t *testing.T) {
	t.Parallel()
	d := isoDaemon(t, daemonOpts{})

	t.Run("memory oom", func(t *testing.T) {
		t.Parallel()
		// tail keeps a line without newline in memory: 500 MiB of zeros.
		isoJob(t, d, "oom", "#!/bin/sh\necho allocating\nhead -c 500M /dev/zero | tail\n",
			"config/limits/memory", "64")
		began := time.Now()
		d.trigger(t, "oom", "{}")
		if got := d.waitRun(t, "oom", 1); got != "FAILED" {
			t.Fatalf("run ended %s, want FAILED; log:\n%s", got, d.cat(t, "mnt/oom/runs/1/log"))
		}
		t.Logf("trigger -> FAILED (out of memory) in %v", time.Since(began).Round(time.Millisecond))
		if got := d.cat(t, "mnt/oom/runs/1/error"); !strings.Contains(got, "out of memory (limit 64 MiB)") {
			t.Errorf("runs/1/error = %q, want it to contain %q", got, "out of memory (limit 64 MiB)")
		}
	})

	t.Run("fork bomb", func(t *testing.T) {
		t.Parallel()
		// After the bomb the script forks nothing (a read with a timeout
		// on a FIFO held open, then a builtin echo): its own fork of sleep
		// lost every race for the 50 pids to the bomb on a loaded machine,
		// and bash's retries outlasted the 30 s timeout.
		short := isoJob(t, d, "bomb", "#!/bin/bash\necho started\nmkfifo /tmp/wait && exec 3<>/tmp/wait\nf(){ f|f & }; f; read -t 2 -u 3; echo done\n",
			"config/limits/pids", "50", "config/timeout", "30s")
		d.trigger(t, "bomb", "{}")
		began := time.Now()
		pidsMax := filepath.Join(isoCgroupDir("pids", d.cgroupOf(short)+"/1/script"), "pids.max")
		// Read once the step runs: its init joined the cgroup after the
		// limits were written.
		var max []byte
		waitFor(t, "the bomb to start", func() bool {
			if isoRunEnded(d, "bomb", 1) {
				return true
			}
			if !strings.Contains(isoLog(d, "bomb", 1), "started") {
				return false
			}
			max, _ = os.ReadFile(pidsMax)
			return true
		})
		if max == nil {
			t.Errorf("%s could not be read while the bomb ran", pidsMax)
		} else if strings.TrimSpace(string(max)) != "50" {
			t.Errorf("%s = %q, want 50", pidsMax, max)
		}
		// The machine stays usable while the bomb runs.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		t0 := time.Now()
		if out, err := exec.CommandContext(ctx, "true").CombinedOutput(); err != nil {
			t.Errorf("`true` on the host while the bomb runs: %v %s", err, out)
		}
		t.Logf("`true` on the host took %v while the bomb ran", time.Since(t0).Round(time.Microsecond))
		got := d.waitRun(t, "bomb", 1)
		took := time.Since(began)
		t.Logf("the bomb's run ended %s after %v", got, took.Round(time.Millisecond))
		if got != "COMPLETED" && got != "FAILED" {
			t.Errorf("run ended %s, want COMPLETED or FAILED within its 30s timeout", got)
		}
		log := d.cat(t, "mnt/bomb/runs/1/log")
		if !strings.Contains(log, "Resource temporarily unavailable") {
			t.Errorf("runs/1/log shows no failed fork (Resource temporarily unavailable):\n%s", isoTail(log, 20))
		}
		isoWaitJobGone(t, short)
	})

	t.Run("io throttle", func(t *testing.T) {
		t.Parallel()
		want, name, err := isoDiskOf(d.state)
		if err != nil {
			t.Skipf("io cannot be limited for this state folder: %v", err)
		}
		src, _ := exec.Command("findmnt", "-n", "-o", "SOURCE,FSTYPE,MAJ:MIN", "-T", d.state).Output()
		t.Logf("state %s: findmnt %s; the disk to throttle is %s (%s)", d.state, strings.TrimSpace(string(src)), want, name)

		short := isoJob(t, d, "io", `#!/bin/sh
echo "t0=$(date +%s.%N)"
dd if=/dev/zero of=/output/big bs=1M count=40 oflag=direct 2>&1
echo "t1=$(date +%s.%N)"
rm -f /output/big
`, "config/limits/io", "10485760", "config/timeout", "60s")
		d.trigger(t, "io", "{}")
		rel := d.cgroupOf(short) + "/1/script"
		files := map[string]string{"read": "blkio.throttle.read_bps_device", "write": "blkio.throttle.write_bps_device"}
		if isoV2() {
			files = map[string]string{"rbps+wbps": "io.max"}
		}
		seen := map[string]string{}
		waitFor(t, "the step's blkio/io cgroup", func() bool {
			if isoRunEnded(d, "io", 1) {
				return true
			}
			if !strings.Contains(isoLog(d, "io", 1), "t0=") {
				return false // read once the step runs: the limits were written before
			}
			for k, f := range files {
				if _, ok := seen[k]; ok {
					continue
				}
				if b, err := os.ReadFile(filepath.Join(isoCgroupDir("blkio", rel), f)); err == nil {
					seen[k] = strings.TrimSpace(string(b))
				}
			}
			return len(seen) == len(files)
		})
		for k, f := range files {
			got, ok := seen[k]
			switch {
			case !ok:
				t.Errorf("%s of the step's cgroup could not be read while it ran", f)
			case isoV2() && (!strings.Contains(got, want+" ") || !strings.Contains(got, "rbps=10485760") || !strings.Contains(got, "wbps=10485760")):
				t.Errorf("%s = %q, want %s rbps=10485760 wbps=10485760", f, got, want)
			case !isoV2() && got != want+" 10485760":
				t.Errorf("%s = %q, want %q (the disk of the state folder)", f, got, want+" 10485760")
			default:
				t.Logf("%s: %s", f, got)
			}
		}
		if got := d.waitRun(t, "io", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/io/runs/1/log"))
		}
		log := d.cat(t, "mnt/io/runs/1/log")
		m := regexp.MustCompile(`copied, ([0-9.]+) s`).FindStringSubmatch(log)
		kv := isoKV(log)
		t0, err0 := strconv.ParseFloat(kv["t0"], 64)
		t1, err1 := strconv.ParseFloat(kv["t1"], 64)
		if m == nil || err0 != nil || err1 != nil {
			t.Fatalf("no dd timing or timestamps in runs/1/log:\n%s", log)
		}
		ddSecs, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("40 MiB with oflag=direct at 10 MiB/s: dd says %.2f s, the step's timestamps %.2f s", ddSecs, t1-t0)
		if ddSecs < 3 || t1-t0 < 3 {
			t.Errorf("40 MiB written in %.2f s (dd) / %.2f s (timestamps), want >= 3 s at 10 MiB/s; log:\n%s", ddSecs, t1-t0, log)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		args := sleepArgs()
		isoJob(t, d, "tmo", fmt.Sprintf("#!/bin/sh\ntrap '' TERM\necho started\nsleep %s\n", args), "config/timeout", "1s")
		began := time.Now()
		d.trigger(t, "tmo", "{}")
		if got := d.waitRun(t, "tmo", 1); got != "TIMEOUT" {
			t.Fatalf("run ended %s, want TIMEOUT", got)
		}
		t.Logf("trigger -> TIMEOUT in %v (timeout 1s, grace 1s)", time.Since(began).Round(time.Millisecond))
		d.wantFile(t, "mnt/tmo/runs/1/exit_code", "124\n")
		if got := d.cat(t, "mnt/tmo/runs/1/error"); !strings.Contains(got, "config/timeout") {
			t.Errorf("runs/1/error = %q, want it to name config/timeout", got)
		}
		if p := d.pgrep(t, args); p != "" {
			t.Errorf("the run is TIMEOUT but its sleep (which ignores SIGTERM) is still there:\n%s", p)
		}
	})

	t.Run("inside", func(t *testing.T) {
		t.Parallel()
		tmpName := isoUniqueName("inside")
		script := strings.ReplaceAll(`#!/bin/sh
echo "pwd=$(pwd)"
echo "self=$0"
echo "args=$*"
echo "pid=$$"
echo "uid=$(id -u)"
echo "hostname=$(hostname)"
echo "input=$(cat /input/input.json)"
echo "app=$(ls /app | tr '\n' ' ')"
echo "pid1=$(cat /proc/1/comm)"
for ns in mnt pid ipc uts; do echo "ns_$ns=$(readlink /proc/self/ns/$ns)"; done
for p in /input /app /usr /etc; do
	if touch "$p/@NAME@" 2>/tmp/err; then echo "write_$p=ok"; else echo "write_$p=$(cat /tmp/err)"; fi
done
echo out > /output/out.txt && echo "write_/output=ok"
echo private > /tmp/@NAME@ && echo "tmp=$(cat /tmp/@NAME@)"
sed 's/^/cgroup: /' /proc/self/cgroup
for f in /proc/$$/fd/*; do echo "fd: ${f##*/} -> $(readlink "$f")"; done
`+isoFolderOpts, "@NAME@", tmpName)
		short := isoJob(t, d, "inside", script)
		isoForgetHostFiles(t, []string{"/tmp", "/usr", "/etc"}, tmpName)
		d.trigger(t, "inside", `{"seen": "inside"}`)
		if got := d.waitRun(t, "inside", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/inside/runs/1/log"))
		}
		log := d.cat(t, "mnt/inside/runs/1/log")
		kv := isoKV(log)
		want := map[string]string{
			"pwd": "/app", "self": "/app/script", "args": "/input /output", "hostname": "jobfs",
			"uid": strconv.Itoa(os.Geteuid()), "input": `{"seen": "inside"}`, "app": "script ",
			"write_/output": "ok", "tmp": "private", "pid1": "jobfs-init",
		}
		for k, v := range want {
			if kv[k] != v {
				t.Errorf("inside the step %s = %q, want %q", k, kv[k], v)
			}
		}
		for _, p := range []string{"/input", "/app", "/usr", "/etc"} {
			if got := kv["write_"+p]; !strings.Contains(got, "Read-only file system") {
				t.Errorf("touch %s/%s inside the step: %q, want Read-only file system", p, tmpName, got)
			}
		}
		if pid, err := strconv.Atoi(kv["pid"]); err != nil || pid > 100 {
			t.Errorf("the step's pid is %q, want a small one (a new pid namespace)", kv["pid"])
		} else {
			t.Logf("the step's pid is %d", pid)
		}
		for _, ns := range []string{"mnt", "pid", "ipc", "uts"} {
			host, _ := os.Readlink("/proc/self/ns/" + ns)
			if got := kv["ns_"+ns]; got == "" || got == host {
				t.Errorf("the step's %s namespace is %q, the host's %q: want a new one", ns, got, host)
			}
		}
		if !strings.Contains(log, "/"+d.cgroupOf(short)+"/1/script\n") {
			t.Errorf("/proc/self/cgroup of the step does not show jobfs/%s/1/script:\n%s", short, log)
		}
		// A step must hold nothing of the daemon: with the mount's /dev/fuse
		// it could read the mount's requests and answer them.
		var fds []string
		for _, line := range strings.Split(log, "\n") {
			if fd, ok := strings.CutPrefix(line, "fd: "); ok {
				fds = append(fds, fd)
				if strings.HasSuffix(fd, "-> /dev/fuse") {
					t.Errorf("the step's shell holds the daemon's FUSE connection: fd %s", fd)
				}
			}
		}
		t.Logf("the step's shell has fds: %s", strings.Join(fds, ", "))
		isoWantFolderOpts(t, kv)
		d.wantFile(t, "mnt/inside/runs/1/output/out.txt", "out\n")
		if _, err := os.Lstat("/tmp/" + tmpName); err == nil {
			t.Errorf("the step's /tmp/%s appeared on the host's /tmp", tmpName)
		}
		isoWantNoHostFiles(t, []string{"/usr", "/etc"}, tmpName)
		for _, p := range []string{"/input", "/app"} {
			if _, err := os.Lstat(filepath.Join(d.state, "jobs", short, "runs", "1", strings.TrimPrefix(p, "/"), tmpName)); err == nil {
				t.Errorf("the step wrote %s into its read-only %s", tmpName, p)
			}
		}
	})

	// A step isolated otherwise (no network) gets an init of its own at
	// first, which builds its root after its step came: its folders are
	// mounted as those of a root built ahead are.
	t.Run("folders own init", func(t *testing.T) {
		t.Parallel()
		isoJob(t, d, "ownroot", "#!/bin/sh\n"+isoFolderOpts, "config/network", "none")
		d.trigger(t, "ownroot", "{}")
		if got := d.waitRun(t, "ownroot", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/ownroot/runs/1/log"))
		}
		isoWantFolderOpts(t, isoKV(d.cat(t, "mnt/ownroot/runs/1/log")))
	})

	t.Run("host root", func(t *testing.T) {
		t.Parallel()
		name := isoUniqueName("root")
		dirs := []string{"/", "/usr", "/usr/local", "/etc", "/var", "/opt", "/root", "/bin", "/tmp"}
		isoForgetHostFiles(t, dirs, name)
		isoJob(t, d, "hostroot", strings.ReplaceAll(`#!/bin/sh
for p in / /usr /usr/local /etc /var /opt /root /bin /tmp/..; do
	touch "$p/@NAME@"; mkdir "$p/@NAME@.d"; echo x > "$p/@NAME@.w"
done
echo tried
`, "@NAME@", name))
		d.trigger(t, "hostroot", "{}")
		d.waitRun(t, "hostroot", 1)
		if log := d.cat(t, "mnt/hostroot/runs/1/log"); !strings.Contains(log, "tried\n") {
			t.Fatalf("the step did not run to its end:\n%s", log)
		}
		isoWantNoHostFiles(t, dirs, name)
	})

	// A step of a root-owned job keeps every capability: it can remount a
	// read-only bind of a host folder read-write in its mount namespace and
	// write through it to the host's file system.
	t.Run("host root remount", func(t *testing.T) {
		t.Parallel()
		name := isoUniqueName("remount")
		dirs := []string{"/", "/usr", "/etc", "/opt"}
		isoForgetHostFiles(t, dirs, name)
		isoJob(t, d, "remount", strings.ReplaceAll(`#!/bin/sh
for p in /usr /etc /opt; do
	mount -o remount,bind,rw "$p" && echo "remounted $p read-write"
	touch "$p/@NAME@" && echo "wrote $p/@NAME@"
done
grep CapEff /proc/self/status
echo tried
`, "@NAME@", name))
		d.trigger(t, "remount", "{}")
		d.waitRun(t, "remount", 1)
		log := d.cat(t, "mnt/remount/runs/1/log")
		if !strings.Contains(log, "tried\n") {
			t.Fatalf("the step did not run to its end:\n%s", log)
		}
		if isoWantNoHostFiles(t, dirs, name) > 0 {
			t.Errorf("a root-owned step modified the host's file system by remounting its binds read-write; its log:\n%s", log)
		}
	})

	t.Run("limits config", func(t *testing.T) {
		t.Parallel()
		d.ok(t, `mkdir mnt/lim`)
		short := isoShort(t, d, "lim")
		t.Cleanup(func() { isoCheckJobGone(t, d, "lim", short) })
		defaults := map[string]string{"cpu": "100\n", "memory": "512\n", "io": "0\n", "pids": "512\n"}
		for name, v := range defaults {
			d.wantFile(t, "mnt/lim/config/limits/"+name, v)
		}
		if got := d.ok(t, `ls mnt/lim/config/limits`); got != "cpu\nio\nmemory\npids\n" {
			t.Errorf("ls config/limits = %q, want cpu io memory pids", got)
		}
		maxCPU := 100 * runtime.NumCPU()
		memMiB := isoMemTotalMiB(t)
		good := map[string][]string{
			"cpu":    {"50", "0", strconv.Itoa(maxCPU)},
			"memory": {"64", "0", strconv.FormatInt(memMiB, 10)},
			"io":     {"10485760", "0"},
			"pids":   {"50", "0"},
		}
		bad := map[string][]string{
			"cpu":    {"-1", "abc", "1.5", strconv.Itoa(maxCPU + 1), "50%"},
			"memory": {"-1", "abc", "1.5", strconv.FormatInt(memMiB+1, 10), "64M"},
			"io":     {"-1", "abc", "1.5", "10M"},
			"pids":   {"-1", "abc", "1.5", "5e1"},
		}
		for _, name := range []string{"cpu", "memory", "io", "pids"} {
			file := "mnt/lim/config/limits/" + name
			for _, v := range good[name] {
				d.ok(t, `printf '%s\n' "$V" > "$F"`, "V="+v, "F="+file)
				d.wantFile(t, file, v+"\n")
			}
			kept := good[name][0]
			d.ok(t, `printf '%s\n' "$V" > "$F"`, "V="+kept, "F="+file)
			for _, v := range bad[name] {
				d.fails(t, `printf '%s\n' "$V" > "$F"`, "Invalid argument", "V="+v, "F="+file)
				d.wantFile(t, file, kept+"\n")
				last := d.ok(t, `tail -n 1 mnt/lim/log`)
				if !strings.Contains(last, "config/limits/"+name+" rejected: ") || !strings.Contains(last, "write a whole number") {
					t.Errorf("after %q > %s the job log's last line is %q, want config/limits/%s rejected: <reason>", v, file, last, name)
				}
			}
			d.ok(t, `rm "$F"`, "F="+file)
			d.wantFile(t, file, defaults[name])
		}
		// The over-the-machine reasons name the bound.
		d.fails(t, fmt.Sprintf(`echo %d > mnt/lim/config/limits/cpu`, maxCPU+1), "Invalid argument")
		if last := d.ok(t, `tail -n 1 mnt/lim/log`); !strings.Contains(last, fmt.Sprintf("at most %d", maxCPU)) {
			t.Errorf("cpu over the machine: job log %q, want it to say at most %d", last, maxCPU)
		}
		d.fails(t, fmt.Sprintf(`echo %d > mnt/lim/config/limits/memory`, memMiB+1), "Invalid argument")
		if last := d.ok(t, `tail -n 1 mnt/lim/log`); !strings.Contains(last, fmt.Sprintf("at most %d", memMiB)) {
			t.Errorf("memory over the machine: job log %q, want it to say at most %d", last, memMiB)
		}
	})
}

// TestIsoStopKill: stop and kill act on the whole tree, double-forked
// children that ignore SIGTERM included; a finished run cannot be stopped.
// The daemon's grace is 3 s here so that stop (waits it) and kill (does
// not) can be told apart.
func TestIsoStopKill(t *testing.T) {
	t.Parallel()
	const grace = 3 * time.Second
	d := isoDaemon(t, daemonOpts{args: []string{"--grace", grace.String()}})
	tree := func(main, child string) string {
		return fmt.Sprintf("#!/bin/sh\n(setsid sh -c 'trap \"\" TERM; sleep %s' &)\ntrap '' TERM\necho started\nsleep %s\n", child, main)
	}
	mainArgs, childArgs := sleepArgs(), sleepArgs()
	short := isoJob(t, d, "tree", tree(mainArgs, childArgs))

	// start runs run id and waits until both sleeps are there.
	start := func(id int, main, child string) {
		t.Helper()
		d.trigger(t, "tree", "{}")
		d.waitStatus(t, "tree", id, "RUNNING")
		waitFor(t, "both sleeps of the run", func() bool { return d.pgrep(t, main) != "" && d.pgrep(t, child) != "" })
	}
	noSurvivor := func(what string, args ...string) {
		t.Helper()
		for _, a := range args {
			if p := d.pgrep(t, a); p != "" {
				t.Errorf("after %s a process of the run survived:\n%s", what, p)
			}
		}
	}

	start(1, mainArgs, childArgs)
	began := time.Now()
	d.ok(t, `echo stop > mnt/tree/runs/1/ctl`)
	if got := d.waitRun(t, "tree", 1); got != "CANCELLED" {
		t.Errorf("after stop run 1 ended %s, want CANCELLED", got)
	}
	took := time.Since(began)
	t.Logf("stop -> CANCELLED in %v (grace %v)", took.Round(time.Millisecond), grace)
	if took < grace-500*time.Millisecond || took > grace+5*time.Second {
		t.Errorf("stop of a tree that ignores SIGTERM took %v, want about the grace %v (at most %v)", took, grace, grace+5*time.Second)
	}
	if got := d.cat(t, "mnt/tree/runs/1/error"); got != "stopped (ctl)\n" {
		t.Errorf("runs/1/error = %q, want stopped (ctl)", got)
	}
	// Its 137 would read as a kill: the log says the grace ran out.
	if log := d.cat(t, "mnt/tree/runs/1/log"); !strings.Contains(log, "jobfs: the step had not ended 3s after SIGTERM: it was killed (SIGKILL)\n") {
		t.Errorf("runs/1/log = %q, want a line saying the step was killed when the grace of 3s ran out", log)
	}
	noSurvivor("stop", mainArgs, childArgs)

	main2, child2 := sleepArgs(), sleepArgs()
	d.ok(t, `printf '%s' "$S" > mnt/tree/config/script`, "S="+tree(main2, child2))
	start(2, main2, child2)
	began = time.Now()
	d.ok(t, `echo kill > mnt/tree/runs/2/ctl`)
	if got := d.waitRun(t, "tree", 2); got != "CANCELLED" {
		t.Errorf("after kill run 2 ended %s, want CANCELLED", got)
	}
	took = time.Since(began)
	t.Logf("kill -> CANCELLED in %v", took.Round(time.Millisecond))
	if took >= grace {
		t.Errorf("kill took %v, want it at once (well under the grace %v)", took, grace)
	}
	if got := d.cat(t, "mnt/tree/runs/2/error"); got != "killed (ctl)\n" {
		t.Errorf("runs/2/error = %q, want killed (ctl)", got)
	}
	if log := d.cat(t, "mnt/tree/runs/2/log"); strings.Contains(log, "after SIGTERM") {
		t.Errorf("runs/2/log = %q: a kill sends no SIGTERM, and its log says none ran out", log)
	}
	noSurvivor("kill", main2, child2)

	for _, cmd := range []string{"stop", "kill"} {
		d.fails(t, fmt.Sprintf(`echo %s > mnt/tree/runs/1/ctl`, cmd), "Invalid argument")
		last := d.ok(t, `tail -n 1 mnt/tree/log`)
		if !strings.Contains(last, "run 1/ctl rejected: ") || !strings.Contains(last, "already ended (CANCELLED)") {
			t.Errorf("after %s of a finished run the job log's last line is %q, want run 1/ctl rejected: ... already ended (CANCELLED) ...", cmd, last)
		}
	}
	d.wantFile(t, "mnt/tree/runs/1/status", "CANCELLED\n")
	isoWaitJobGone(t, short)
}

// TestIsoCgroupCrashCleanup: cgroups a killed daemon left are removed at
// the next start, and the run it left is FAILED with no process left.
func TestIsoCgroupCrashCleanup(t *testing.T) {
	t.Parallel()
	d := isoDaemon(t, daemonOpts{})
	args := sleepArgs()
	short := isoJob(t, d, "crash", fmt.Sprintf("#!/bin/sh\necho started\nsleep %s\n", args))
	d.trigger(t, "crash", "{}")
	d.waitStatus(t, "crash", 1, "RUNNING")
	waitFor(t, "the step's sleep", func() bool { return d.pgrep(t, args) != "" })
	step := isoCgroupDir("pids", d.cgroupOf(short)+"/1/script")
	if _, err := os.Stat(step); err != nil {
		t.Fatalf("the running step's cgroup: %v", err)
	}

	d.kill9(t)
	if _, err := os.Stat(step); err != nil {
		t.Fatalf("after kill -9 of the daemon the step's cgroup is already gone (%v): nothing for the next start to clean", err)
	}
	t.Logf("left by the killed daemon: %s", strings.Join(isoJobCgroups(short), " "))
	// The kernel ends the dead daemon's FUSE connection only once no
	// process holds its /dev/fuse; a step that inherited it delays that.
	for pid, cmd := range isoProcsInJob(short) {
		if fds := isoFuseFds(pid); len(fds) > 0 {
			t.Logf("after kill -9 of the daemon, pid %d (%s) of the step still holds /dev/fuse (fd %s)", pid, cmd, strings.Join(fds, ","))
		}
	}

	d.restart(t)
	if left := isoRunCgroups(short); len(left) > 0 {
		t.Errorf("after the restart the crashed run's cgroups are still there: %s", strings.Join(left, " "))
	}
	if got := d.waitRun(t, "crash", 1); got != "FAILED" {
		t.Errorf("the run left by the crash ended %s, want FAILED", got)
	}
	if got := d.cat(t, "mnt/crash/runs/1/error"); !strings.Contains(got, "jobfs stopped while the run was active") {
		t.Errorf("runs/1/error = %q, want jobfs stopped while the run was active", got)
	}
	if p := d.pgrep(t, args); p != "" {
		t.Errorf("the crashed run's sleep survived the restart:\n%s", p)
	}
	if p := isoProcsInJob(short); len(p) > 0 {
		t.Errorf("processes left in the job's cgroups: %v", p)
	}
}

// TestIsoLeftProcessesNamed: processes a step leaves running when its main
// process ends are killed with it (its pid namespace ends), and its log
// says so and names them; they were killed without a word before.
func TestIsoLeftProcessesNamed(t *testing.T) {
	t.Parallel()
	d := isoDaemon(t, daemonOpts{})
	// The script waits for its sleep's exec: on a loaded machine it could
	// end first, and its child would be named as the script it was forked of.
	isoJob(t, d, "bg", "#!/bin/sh\n( sleep 3; echo late ) &\nsleep 30 &\nuntil [ \"$(cat /proc/$!/comm)\" = sleep ]; do :; done\necho main done\n")
	d.trigger(t, "bg", "{}")
	if got := d.waitRun(t, "bg", 1); got != "COMPLETED" {
		t.Fatalf("run ended %s, want COMPLETED", got)
	}
	log := d.cat(t, "mnt/bg/runs/1/log")
	if !strings.HasPrefix(log, "main done\n") || !strings.Contains(log, "process(es) it left running were killed: ") || !strings.Contains(log, "sleep (pid ") {
		t.Errorf("runs/1/log = %q, want main done, then a line naming the sleeps killed", log)
	}
	// A step that leaves nothing gets no such line.
	isoJob(t, d, "clean", "#!/bin/sh\necho only\n")
	d.trigger(t, "clean", "{}")
	d.waitRun(t, "clean", 1)
	d.wantFile(t, "mnt/clean/runs/1/log", "only\n")
	// Nor does a stopped one whose foreground child the stop ended with it:
	// that child was not left running.
	fg := sleepArgs()
	isoJob(t, d, "fg", "#!/bin/sh\necho waiting\nsleep "+fg+"\n")
	d.trigger(t, "fg", "{}")
	d.waitStatus(t, "fg", 1, "RUNNING")
	waitFor(t, "the foreground sleep", func() bool { return d.pgrep(t, fg) != "" })
	d.ok(t, `echo stop > mnt/fg/runs/1/ctl`)
	if got := d.waitRun(t, "fg", 1); got != "CANCELLED" {
		t.Errorf("after stop the run ended %s, want CANCELLED", got)
	}
	if log := d.cat(t, "mnt/fg/runs/1/log"); strings.Contains(log, "left running") {
		t.Errorf("runs/1/log of a stopped step = %q: its foreground sleep, stopped with it, is called left running", log)
	}
	// One that ignores the stop's SIGTERM was left running, and is named:
	// the background sh and its sleep (which inherits the ignore), not the
	// foreground sleep the stop ended.
	bgArgs, fgArgs := sleepArgs(), sleepArgs()
	// (": " last: a shell that would exec its last command forks it here.)
	isoJob(t, d, "trap", "#!/bin/sh\nsh -c 'trap \"\" TERM; sleep "+bgArgs+"; :' &\nsleep "+fgArgs+"\n")
	d.trigger(t, "trap", "{}")
	d.waitStatus(t, "trap", 1, "RUNNING")
	// Two match bgArgs once the sh (its command line holds them) has set its
	// trap and started its sleep.
	waitFor(t, "both sleeps", func() bool {
		return strings.Count(d.pgrep(t, bgArgs), "\n") >= 1 && d.pgrep(t, fgArgs) != ""
	})
	d.ok(t, `echo stop > mnt/trap/runs/1/ctl`)
	if got := d.waitRun(t, "trap", 1); got != "CANCELLED" {
		t.Errorf("after stop the run ended %s, want CANCELLED", got)
	}
	if log := d.cat(t, "mnt/trap/runs/1/log"); !strings.Contains(log, "jobfs: the step ended; 2 process(es) it left running were killed: ") {
		t.Errorf("runs/1/log = %q, want the 2 processes that ignored the stop named, and not the foreground sleep", log)
	}
}

// TestIsoJobCgroupKept: a job's cgroup folder outlives its run, empty, for
// the job's next run (which then makes one level of folders fewer), and on
// cgroup v1 the run's folder is renamed to the job's spare, which the next
// run's is renamed from; deleting the job removes them, and so does the
// daemon's stop (isoDaemon's cleanup checks that).
func TestIsoJobCgroupKept(t *testing.T) {
	t.Parallel()
	d := isoDaemon(t, daemonOpts{})
	kept := isoJob(t, d, "kept", "#!/bin/true\n")
	gone := isoJob(t, d, "gone", "#!/bin/true\n")
	for _, job := range []string{"kept", "gone"} {
		d.trigger(t, job, "{}")
		if got := d.waitRun(t, job, 1); got != "COMPLETED" {
			t.Fatalf("%s: run 1 ended %s, want COMPLETED", job, got)
		}
	}
	isoWaitJobGone(t, kept)
	if len(isoJobCgroups(kept)) == 0 {
		t.Errorf("after the run ended the job's cgroup folder is gone; want it kept for the next run")
	}
	spare := func() []string {
		var out []string
		for _, j := range isoJobCgroups(kept) {
			if _, err := os.Stat(filepath.Join(j, "spare")); err == nil {
				out = append(out, j)
			}
		}
		return out
	}
	if !isoV2() && len(spare()) != len(isoJobCgroups(kept)) {
		t.Errorf("cgroup v1: the job's spare run folder is in %v, want it in every hierarchy: %v", spare(), isoJobCgroups(kept))
	}
	d.trigger(t, "kept", "{}")
	if got := d.waitRun(t, "kept", 2); got != "COMPLETED" {
		t.Errorf("run 2, in the kept folder, ended %s, want COMPLETED", got)
	}
	if log := d.cat(t, "mnt/kept/runs/2/log"); strings.Contains(log, "cgroup") {
		t.Errorf("run 2's log mentions cgroups:\n%s", log)
	}
	isoWaitJobGone(t, kept)
	d.ok(t, "rm -r mnt/gone")
	if left := isoJobCgroups(gone); len(left) > 0 {
		t.Errorf("the deleted job's cgroup folders are left: %s", strings.Join(left, " "))
	}
}

// TestIsoCPUQuota: a 4 s busy loop with cpu 50 gets half a core, measured from
// the step cgroup's own usage counter over 3 s. Not parallel: it needs the
// machine's CPU. Its cgroups get the highest CPU weight for the
// measurement, so that a busy machine does not starve it; if it is starved
// all the same (throttled in few periods), the test skips.
func TestIsoCPUQuota(t *testing.T) {
	d := isoDaemon(t, daemonOpts{})
	short := isoJob(t, d, "hog", "#!/bin/sh\necho started\ntimeout 4 sh -c 'while :; do :; done'\necho done\n",
		"config/limits/cpu", "50", "config/timeout", "60s")
	d.trigger(t, "hog", "{}")
	rel := d.cgroupOf(short) + "/1/script"
	waitFor(t, "the hog to start", func() bool {
		_, err := isoCPUUsage(rel)
		return err == nil && strings.Contains(isoLog(d, "hog", 1), "started")
	})
	if isoV2() {
		if b, _ := os.ReadFile(filepath.Join(isoCgroupDir("cpu", rel), "cpu.max")); strings.TrimSpace(string(b)) != "50000 100000" {
			t.Errorf("cpu.max = %q, want 50000 100000", b)
		}
	} else {
		q, _ := os.ReadFile(filepath.Join(isoCgroupDir("cpu", rel), "cpu.cfs_quota_us"))
		p, _ := os.ReadFile(filepath.Join(isoCgroupDir("cpu", rel), "cpu.cfs_period_us"))
		if strings.TrimSpace(string(q)) != "50000" || strings.TrimSpace(string(p)) != "100000" {
			t.Errorf("cpu.cfs_quota_us/cpu.cfs_period_us = %q/%q, want 50000/100000", q, p)
		}
	}
	isoBoostCPUWeight(t, rel)
	time.Sleep(300 * time.Millisecond)
	u0, err := isoCPUUsage(rel)
	w0 := time.Now()
	s0 := isoReadStat(filepath.Join(isoCgroupDir("cpu", rel), "cpu.stat"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	u1, err := isoCPUUsage(rel)
	w1 := time.Now()
	s1 := isoReadStat(filepath.Join(isoCgroupDir("cpu", rel), "cpu.stat"))
	if err != nil {
		t.Fatalf("the hog ended before the second reading: %v", err)
	}
	ratio := float64(u1-u0) / float64(w1.Sub(w0).Nanoseconds())
	periods, throttled := s1["nr_periods"]-s0["nr_periods"], s1["nr_throttled"]-s0["nr_throttled"]
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("cpu 50: %.3f of a core over %v (%d of %d periods throttled; loadavg %s)",
		ratio, w1.Sub(w0).Round(time.Millisecond), throttled, periods, strings.TrimSpace(string(load)))
	switch {
	case ratio > 0.6:
		t.Errorf("the hog used %.3f of a core, want 0.5 ±0.1: the quota is not enforced", ratio)
	case ratio < 0.4 && (periods == 0 || float64(throttled) < 0.5*float64(periods)):
		// Throttled in few periods: the step got less than its quota
		// because other processes had the CPU, not because of the quota.
		d.ok(t, `echo kill > mnt/hog/runs/1/ctl`)
		d.waitRun(t, "hog", 1)
		t.Skipf("machine too loaded to measure a quota: the hog got %.3f of a core, throttled in only %d of %d periods (loadavg %s)",
			ratio, throttled, periods, strings.TrimSpace(string(load)))
	case ratio < 0.4:
		t.Errorf("the hog used %.3f of a core while throttled in %d of %d periods, want 0.5 ±0.1", ratio, throttled, periods)
	}
	if got := d.waitRun(t, "hog", 1); got != "COMPLETED" {
		t.Errorf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/hog/runs/1/log"))
	}
}

// TestIsoTriggerCost measures (does not assert) trigger -> step running
// with full isolation: the time from before `echo > data` to the step's
// first `date +%s.%N`, median of 20 runs. Not parallel.
func TestIsoTriggerCost(t *testing.T) {
	d := isoDaemon(t, daemonOpts{})
	isoJob(t, d, "cost", "#!/bin/sh\ndate +%s.%N\n", "config/timeout", "30s")
	data := filepath.Join(d.mnt, "cost", "data")
	measure := func(id int) time.Duration {
		t.Helper()
		before := time.Now()
		if err := os.WriteFile(data, []byte("\n"), 0o644); err != nil {
			t.Fatalf("echo > data: %v", err)
		}
		// Polled, not runs/N/wait: a bounded wait; the step's own
		// timestamp is what is measured.
		if got := d.waitRun(t, "cost", id); got != "COMPLETED" {
			t.Fatalf("run %d ended %s, want COMPLETED", id, got)
		}
		log := isoLog(d, "cost", id)
		at, err := isoParseDate(strings.TrimSpace(log))
		if err != nil {
			t.Fatalf("run %d: log %q: %v", id, log, err)
		}
		return at.Sub(before)
	}
	measure(1) // warm up
	// 20 runs, or fewer (at least 5) when a loaded machine makes them slow:
	// the suite must stay short.
	var costs []time.Duration
	for id, budget := 2, time.Now().Add(15*time.Second); id <= 21 && (id <= 6 || time.Now().Before(budget)); id++ {
		costs = append(costs, measure(id))
	}
	// The same `date` started straight from this process, for reference.
	var direct []time.Duration
	for i := 0; i < 20; i++ {
		before := time.Now()
		out, err := exec.Command("date", "+%s.%N").Output()
		if err != nil {
			t.Fatal(err)
		}
		at, err := isoParseDate(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatal(err)
		}
		direct = append(direct, at.Sub(before))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("trigger -> step running (cgroup + namespaces + private root, %s binary): median %v, min %v, max %v over %d runs",
		isoBuild(), isoMedian(costs), slices.Min(costs), slices.Max(costs), len(costs))
	t.Logf("for reference, fork/exec of date from the test: median %v; loadavg %s", isoMedian(direct), strings.TrimSpace(string(load)))
}

// isoBoostCPUWeight gives the cgroups from jobfs down to rel the highest
// CPU weight, so that other processes of a busy machine do not starve the
// step: its quota, not the competition, is then what bounds its usage. The
// weight of the shared jobfs folder is restored when t ends; the ones below
// go with the run's cgroups.
func isoBoostCPUWeight(t *testing.T, rel string) {
	t.Helper()
	file, high := "cpu.shares", "262144"
	if isoV2() {
		file, high = "cpu.weight", "10000"
	}
	parts := strings.Split(rel, "/")
	for i := 1; i <= len(parts); i++ {
		f := filepath.Join(isoCgroupDir("cpu", strings.Join(parts[:i], "/")), file)
		old, err := os.ReadFile(f)
		if err != nil {
			t.Logf("cannot raise the CPU weight: %v", err)
			return
		}
		if i == 1 {
			t.Cleanup(func() {
				if err := os.WriteFile(f, old, 0); err != nil {
					t.Errorf("restore %s to %s: %v", f, strings.TrimSpace(string(old)), err)
				}
			})
		}
		if err := os.WriteFile(f, []byte(high), 0); err != nil {
			t.Logf("cannot raise the CPU weight: %v", err)
			return
		}
	}
}

// isoDaemon starts a daemon for t; once it has stopped (t's cleanup), no
// cgroup of any of its jobs may be left.
func isoDaemon(t *testing.T, opts daemonOpts) *daemon {
	t.Helper()
	var d *daemon
	// Registered before startDaemon's cleanup, so it runs after it.
	t.Cleanup(func() {
		if d == nil {
			return
		}
		ids, _ := os.ReadDir(filepath.Join(d.state, "jobs"))
		for _, id := range ids {
			if left := isoJobCgroups(id.Name()); len(left) > 0 {
				t.Errorf("the daemon stopped but left cgroups (removed now): %s", strings.Join(left, " "))
				isoRemoveCgroups(t, left)
			}
		}
	})
	d = startDaemon(t, opts)
	return d
}

// isoJob makes a script job with settings (path, value pairs below the
// job folder) and returns its shortname. When t ends, the job's cgroups
// must be gone.
func isoJob(t *testing.T, d *daemon, name, script string, settings ...string) string {
	t.Helper()
	d.scriptJob(t, name, script)
	for i := 0; i+1 < len(settings); i += 2 {
		d.ok(t, `printf '%s\n' "$V" > "mnt/$J/$P"`, "J="+name, "P="+settings[i], "V="+settings[i+1])
	}
	short := isoShort(t, d, name)
	t.Cleanup(func() { isoCheckJobGone(t, d, name, short) })
	return short
}

func isoShort(t *testing.T, d *daemon, job string) string {
	t.Helper()
	short := strings.TrimSpace(d.cat(t, "mnt/"+job+"/shortname"))
	if short == "" || strings.ContainsAny(short, "/. ") {
		t.Fatalf("shortname of %s = %q", job, short)
	}
	return short
}

// isoCheckJobGone runs when a test ends: the job's runs are over (else
// they are killed), and their cgroups and processes must be gone; what is
// left is reported and removed. (The job's own folder, kept for its next
// run, goes when the daemon stops: isoDaemon checks that.)
func isoCheckJobGone(t *testing.T, d *daemon, job, short string) {
	if len(isoRunCgroups(short)) > 0 && d.running() {
		// A test that failed half-way may leave a run active: kill it.
		runs, _ := filepath.Glob(filepath.Join(d.mnt, job, "runs", "[0-9]*"))
		for _, r := range runs {
			os.WriteFile(filepath.Join(r, "ctl"), []byte("kill\n"), 0)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(isoRunCgroups(short)) > 0 && time.Now().Before(deadline) {
		time.Sleep(pollEvery)
	}
	if left := isoRunCgroups(short); len(left) > 0 {
		t.Errorf("job %s (%s): its runs' cgroups are left after its runs ended (removed now): %s", job, short, strings.Join(left, " "))
		isoRemoveCgroups(t, left)
	}
	if p := isoProcsInJob(short); len(p) > 0 {
		t.Errorf("job %s (%s): processes left in its cgroups (killed now): %v", job, short, p)
		for pid := range p {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// isoWaitJobGone waits until the job's runs' cgroups are gone (the daemon
// removes the job's folder right after a run's status is final).
func isoWaitJobGone(t *testing.T, short string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(pollEvery) {
		if len(isoRunCgroups(short)) == 0 && len(isoProcsInJob(short)) == 0 {
			return
		}
	}
	t.Errorf("job %s: 10 s after its run ended, cgroups %v and processes %v are left", short, isoRunCgroups(short), isoProcsInJob(short))
}

// isoRunEnded reports whether runs/<id>/status is final.
func isoRunEnded(d *daemon, job string, id int) bool {
	b, err := os.ReadFile(filepath.Join(d.mnt, job, "runs", strconv.Itoa(id), "status"))
	return err == nil && slices.Contains(terminal, strings.TrimSpace(string(b)))
}

// isoLog reads runs/<id>/log through the mount, "" when it cannot.
func isoLog(d *daemon, job string, id int) string {
	b, _ := os.ReadFile(filepath.Join(d.mnt, job, "runs", strconv.Itoa(id), "log"))
	return string(b)
}

// isoV2 reports whether the daemon uses cgroup v2 (a pure v2 host).
func isoV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// isoCgroupDir is the folder of cgroup rel (e.g. jobfs/<job>/<run>/<step>)
// for controller ctrl: /sys/fs/cgroup/<ctrl>/rel on v1, /sys/fs/cgroup/rel
// on v2.
func isoCgroupDir(ctrl, rel string) string {
	if isoV2() {
		return filepath.Join("/sys/fs/cgroup", rel)
	}
	return filepath.Join("/sys/fs/cgroup", ctrl, rel)
}

// isoJobCgroups lists the cgroup folders of job short on any hierarchy.
// The daemon keeps them while it runs (for the job's next run); once it
// has stopped, none may be left.
func isoJobCgroups(short string) []string {
	a, _ := filepath.Glob("/sys/fs/cgroup/*/jobfs/*/" + short)
	b, _ := filepath.Glob("/sys/fs/cgroup/jobfs/*/" + short)
	return append(a, b...)
}

// isoRunCgroups lists the cgroup folders of job short's runs on any
// hierarchy: once a run has ended its folder must be gone (on cgroup v1
// renamed to the job's spare, for its next run: not listed).
func isoRunCgroups(short string) []string {
	var out []string
	for _, job := range isoJobCgroups(short) {
		entries, _ := os.ReadDir(job)
		for _, e := range entries {
			if e.IsDir() && e.Name() != "spare" {
				out = append(out, filepath.Join(job, e.Name()))
			}
		}
	}
	return out
}

// isoProcsInJob lists the processes whose cgroup is below jobfs/<short>.
func isoProcsInJob(short string) map[int]string {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	out := map[int]string{}
	for _, p := range procs {
		cg, err := os.ReadFile(p + "/cgroup")
		if err != nil || !cgroupHasJob(string(cg), short) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		cmd, _ := os.ReadFile(p + "/cmdline")
		out[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
	}
	return out
}

// isoFuseFds lists the fds of pid that are /dev/fuse.
func isoFuseFds(pid int) []string {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	var out []string
	for _, e := range ents {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); l == "/dev/fuse" {
			out = append(out, e.Name())
		}
	}
	return out
}

// isoRemoveCgroups removes cgroup trees: thaws, kills their processes,
// removes the folders deepest first.
func isoRemoveCgroups(t *testing.T, dirs []string) {
	for _, dir := range dirs {
		var all []string
		filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for _, p := range all {
			os.WriteFile(filepath.Join(p, "freezer.state"), []byte("THAWED"), 0)
			os.WriteFile(filepath.Join(p, "cgroup.kill"), []byte("1"), 0)
			if b, err := os.ReadFile(filepath.Join(p, "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
		}
		for i := len(all) - 1; i >= 0; i-- {
			var err error
			for try := 0; try < 50; try++ {
				if err = syscall.Rmdir(all[i]); err == nil || err == syscall.ENOENT {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil && err != syscall.ENOENT {
				t.Errorf("rmdir %s: %v", all[i], err)
			}
		}
	}
}

// isoCPUUsage is the CPU time used by cgroup rel, in nanoseconds.
func isoCPUUsage(rel string) (int64, error) {
	if isoV2() {
		st := isoReadStat(filepath.Join(isoCgroupDir("cpu", rel), "cpu.stat"))
		us, ok := st["usage_usec"]
		if !ok {
			return 0, fmt.Errorf("no usage_usec in %s/cpu.stat", rel)
		}
		return us * 1000, nil
	}
	b, err := os.ReadFile(filepath.Join(isoCgroupDir("cpuacct", rel), "cpuacct.usage"))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// isoReadStat reads a "key value" per line file such as cpu.stat.
func isoReadStat(file string) map[string]int64 {
	b, _ := os.ReadFile(file)
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			out[f[0]] = n
		}
	}
	return out
}

// isoDiskOf returns "major:minor" and the name of the whole disk holding
// path (a partition resolved to its disk), or why there is none.
func isoDiskOf(path string) (dev, name string, err error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "", "", err
	}
	maj := (st.Dev >> 8) & 0xfff
	min := (st.Dev & 0xff) | ((st.Dev >> 12) & 0xfff00)
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", maj, min)
	if _, err := os.Stat(sys); err != nil {
		return "", "", fmt.Errorf("%s is on device %d:%d, not a block device", path, maj, min)
	}
	if _, err := os.Stat(sys + "/partition"); err == nil {
		sys += "/.."
	}
	b, err := os.ReadFile(sys + "/dev")
	if err != nil {
		return "", "", err
	}
	real, _ := filepath.EvalSymlinks(sys)
	return strings.TrimSpace(string(b)), filepath.Base(real), nil
}

// isoKV reads the "key=value" lines of a step's log.
func isoKV(log string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.ContainsAny(k, " \t") {
			out[k] = v
		}
	}
	return out
}

var isoNameN int

// isoUniqueName is a file name no one else uses on this machine.
func isoUniqueName(what string) string {
	markerMu.Lock()
	defer markerMu.Unlock()
	isoNameN++
	return fmt.Sprintf("jobfs-iso-%s-%d-%d-%d", what, os.Getpid(), time.Now().UnixNano(), isoNameN)
}

// isoForgetHostFiles removes name, name.d and name.w from dirs on the host
// when t ends, should a step have managed to write them.
func isoForgetHostFiles(t *testing.T, dirs []string, name string) {
	t.Cleanup(func() {
		for _, dir := range dirs {
			for _, n := range []string{name, name + ".d", name + ".w"} {
				os.Remove(filepath.Join(dir, n))
			}
		}
	})
}

// isoWantNoHostFiles fails t for each of name, name.d, name.w found in
// dirs on the host, and returns how many.
func isoWantNoHostFiles(t *testing.T, dirs []string, name string) int {
	t.Helper()
	found := 0
	for _, dir := range dirs {
		for _, n := range []string{name, name + ".d", name + ".w"} {
			if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
				found++
				t.Errorf("the step created %s on the host", filepath.Join(dir, n))
			}
		}
	}
	return found
}

func isoMemTotalMiB(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}

// isoParseDate parses the output of date +%s.%N.
func isoParseDate(s string) (time.Time, error) {
	sec, nsec, ok := strings.Cut(s, ".")
	a, err1 := strconv.ParseInt(sec, 10, 64)
	b, err2 := strconv.ParseInt(nsec, 10, 64)
	if !ok || err1 != nil || err2 != nil || len(nsec) != 9 {
		return time.Time{}, fmt.Errorf("not date +%%s.%%N: %q", s)
	}
	return time.Unix(a, b), nil
}

func isoMedian(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// isoBuild says whether the daemon under test was built with -race.
func isoBuild() string {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go" // where .ci/run and the README put it
	}
	out, err := exec.Command(goTool, "version", "-m", jobfsBin).Output()
	if err == nil && strings.Contains(string(out), "-race=true") {
		return "-race"
	}
	return "non-race"
}

func isoTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// isoFolderOpts prints the mount options of the step's folders as
// opts_<folder>=<options> lines (isoWantFolderOpts).
const isoFolderOpts = `for p in /input /output /app; do echo "opts_$p=$(awk -v p=$p '$5 == p {print $6}' /proc/self/mountinfo)"; done
`

// isoWantFolderOpts checks that the step's folders are mounted nosuid and
// nodev, /input and /app read-only, /output read-write.
func isoWantFolderOpts(t *testing.T, kv map[string]string) {
	t.Helper()
	for _, p := range []string{"/input", "/output", "/app"} {
		opts := strings.Split(kv["opts_"+p], ",")
		want := []string{"nosuid", "nodev", "ro"}
		if p == "/output" {
			want[2] = "rw"
		}
		for _, w := range want {
			if !slices.Contains(opts, w) {
				t.Errorf("the step's %s is mounted %q, want %s among its options", p, kv["opts_"+p], w)
			}
		}
	}
}
