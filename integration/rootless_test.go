//go:build linux

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests of this file run jobfs as a normal user (README "Isolation",
// "Install"): a throwaway useradd user, given /dev/fuse with an ACL (taken
// back when the test ends, passed or failed), runs the daemon with setpriv
// and its state in its home, mounts through fusermount3, and works its
// mount with runuser. Its steps run as that user in user, mount, pid, ipc
// and uts namespaces; limits apply where an administrator handed it a v1
// memory cgroup, else each run's log says they are not enforced.

// userDaemon is a jobfs daemon run as a throwaway user.
type userDaemon struct {
	u          shareUser
	home       string
	bin        string // the user's link to the binary under test
	args       []string
	cgroup     string // a cgroup.procs file the daemon is started in, or ""
	chroot     string // the daemon and the user's commands run chrooted here, or ""
	cmd        *exec.Cmd
	outPath    string
	exited     chan struct{}
	mnt, state string
}

// rootlessSkip skips t where a normal user's daemon cannot be tried.
func rootlessSkip(t *testing.T) {
	t.Helper()
	shareSkip(t)
	for _, tool := range []string{"setfacl", "setpriv", "fusermount3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is needed to run jobfs as a normal user: %v", tool, err)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		t.Skip("kernel.unprivileged_userns_clone=0: this host refuses user namespaces to normal users")
	}
}

// fuseACLMu orders the tests' changes of /dev/fuse's ACL.
var fuseACLMu sync.Mutex

// rootlessUser makes a throwaway user that may open /dev/fuse (an ACL,
// removed when t ends) and gives it the binaries under test in its home.
func rootlessUser(t *testing.T) shareUser {
	t.Helper()
	users, _ := shareUsers(t, 1, false)
	u := users[0]
	func() {
		fuseACLMu.Lock()
		defer fuseACLMu.Unlock() // shareCmd may end the test
		shareCmd(t, "setfacl", "-m", "u:"+u.name+":rw", "/dev/fuse")
	}()
	t.Cleanup(func() {
		fuseACLMu.Lock()
		defer fuseACLMu.Unlock()
		if out, err := exec.Command("setfacl", "-x", "u:"+u.name, "/dev/fuse").CombinedOutput(); err != nil {
			t.Errorf("setfacl -x u:%s /dev/fuse: %v: %s", u.name, err, out)
		}
		// Removing the last named entry leaves the mask the first one
		// added: with no named entry left, the ACL goes whole, as it was.
		out, err := exec.Command("getfacl", "-c", "-p", "/dev/fuse").Output()
		if err == nil && !regexp.MustCompile(`(?m)^(user|group):[^:]+:`).Match(out) {
			if out, err := exec.Command("setfacl", "-b", "/dev/fuse").CombinedOutput(); err != nil {
				t.Errorf("setfacl -b /dev/fuse: %v: %s", err, out)
			}
		}
	})
	bin := filepath.Join(u.home, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := linkBinaries(jobfsBin, bin); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"mnt", "state", "repos"} {
		if err := os.Mkdir(filepath.Join(u.home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shareCmd(t, "chown", "-R", u.name+":"+u.name, u.home)
	return u
}

// startUserDaemon runs jobfs mount as u (in the v1 cgroup whose
// cgroup.procs is cgroupProcs, when set) and waits for its ready line; it
// is stopped when t ends.
func startUserDaemon(t *testing.T, u shareUser, cgroupProcs string, args ...string) *userDaemon {
	t.Helper()
	d := &userDaemon{u: u, home: u.home, bin: filepath.Join(u.home, "bin", "jobfs"), args: args, cgroup: cgroupProcs,
		mnt: filepath.Join(u.home, "mnt"), state: filepath.Join(u.home, "state"),
		outPath: filepath.Join(t.TempDir(), "jobfs.out")}
	mountpointsMu.Lock()
	mountpoints = append(mountpoints, d.mnt)
	mountpointsMu.Unlock()
	t.Cleanup(func() { d.stop(t) })
	d.start(t)
	return d
}

func (d *userDaemon) start(t *testing.T) {
	t.Helper()
	argv := []string{"setpriv", "--reuid=" + d.u.uid, "--regid=" + d.u.gid, "--init-groups", "--",
		d.bin, "mount", "--state", d.state, "--repos", filepath.Join(d.home, "repos"), "--grace", "1s"}
	argv = append(append(argv, d.args...), d.mnt)
	if d.cgroup != "" { // join the cgroup first, as an administrator's start script would
		argv = append([]string{"/bin/sh", "-c", `echo $$ > "$0" && exec "$@"`, d.cgroup}, argv...)
	}
	if d.chroot != "" {
		argv = append([]string{"chroot", d.chroot}, argv...)
	}
	f, err := os.OpenFile(d.outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	before := len(d.output()) // a restart: the earlier ready line does not count
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = []string{"HOME=" + d.home, "USER=" + d.u.name, "PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	err = cmd.Start()
	f.Close()
	if err != nil {
		t.Fatalf("start jobfs as %s: %v", d.u.name, err)
	}
	d.cmd, d.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(d.exited) }()
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(pollEvery) {
		if strings.Contains(d.output()[before:], "ready: ") {
			return
		}
		select {
		case <-d.exited:
			t.Fatalf("jobfs as %s exited before it was ready (%v):\n%s", d.u.name, cmd.ProcessState, d.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobfs as %s printed no ready: line within %v:\n%s", d.u.name, readyTimeout, d.output())
		}
	}
}

func (d *userDaemon) output() string {
	b, _ := os.ReadFile(d.outPath) // missing: nothing written yet
	return string(b)
}

// stop ends the daemon with SIGTERM (SIGKILL after stopTimeout) and
// unmounts what it left.
func (d *userDaemon) stop(t *testing.T) {
	if d.cmd == nil {
		return
	}
	select {
	case <-d.exited:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(stopTimeout):
			t.Errorf("jobfs as %s did not exit within %v of SIGTERM; killed", d.u.name, stopTimeout)
			d.cmd.Process.Kill()
			<-d.exited
		}
	}
	d.cmd = nil
	mnt := filepath.Join(d.chroot, d.mnt)
	for _, p := range mountsUnder(mnt) {
		if p == mnt {
			t.Errorf("%s still mounted after jobfs exited", mnt)
			if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount -l %s: %v: %s", mnt, err, out)
			}
		}
	}
	if t.Failed() {
		t.Logf("jobfs output:\n%s", d.output())
	}
}

// restart stops the daemon and starts it again with args.
func (d *userDaemon) restart(t *testing.T, args ...string) {
	t.Helper()
	d.stop(t)
	d.args = args
	d.start(t)
}

// sh runs script with bash as the daemon's user in its home.
func (d *userDaemon) sh(t *testing.T, script string, env ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shTimeout)
	defer cancel()
	argv := []string{"runuser", "-u", d.u.name, "--", "/bin/bash", "-c", "cd && " + script}
	if d.chroot != "" {
		argv = append([]string{"chroot", d.chroot}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append([]string{"HOME=" + d.home, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C"}, env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{script: d.u.name + "$ " + script, out: stdout.String(), err: stderr.String(), code: exitCode(err)}
	if ctx.Err() != nil {
		t.Fatalf("shell command did not end within %v:\n%s", shTimeout, r)
	}
	return r
}

func (d *userDaemon) ok(t *testing.T, script string, env ...string) string {
	t.Helper()
	r := d.sh(t, script, env...)
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	return r.out
}

// run makes job name of type script (or chains, when chains is set),
// starts a run and returns its status once it has ended, and its log.
func (d *userDaemon) run(t *testing.T, name, script string, settings ...string) (status, log string) {
	t.Helper()
	d.ok(t, `mkdir -p "mnt/$J" && echo script > "mnt/$J/config/type" && printf '%s' "$S" > "mnt/$J/config/script"`, "J="+name, "S="+script)
	for i := 0; i+1 < len(settings); i += 2 {
		d.ok(t, `printf '%s\n' "$V" > "mnt/$J/config/$K"`, "J="+name, "K="+settings[i], "V="+settings[i+1])
	}
	return d.trigger(t, name)
}

// trigger starts a run of job name and returns its status and log once it
// has ended (runs/N/wait blocks until then).
func (d *userDaemon) trigger(t *testing.T, name string) (status, log string) {
	t.Helper()
	d.ok(t, `echo '{"n": 1}' > "mnt/$J/data"`, "J="+name)
	status = strings.TrimSpace(d.ok(t, `cat "mnt/$J/runs/latest/wait"`, "J="+name))
	return status, d.ok(t, `cat "mnt/$J/runs/latest/log"`, "J="+name)
}

// rootlessProbe is the step that shows its view of the machine, one
// "name: value" line each.
const rootlessProbe = `#!/bin/sh
echo "uid: $(id -u)"
echo "uid_map: $(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')"
echo "pid1: $(tr '\0' ' ' < /proc/1/cmdline)"
echo "mypid: $$"
echo "hostname: $(hostname)"
touch /input/x 2>/dev/null && echo "input: writable" || echo "input: read-only"
touch /usr/x 2>/dev/null && echo "usr: writable" || echo "usr: read-only"
touch /etc/x 2>/dev/null && echo "etc: writable" || echo "etc: read-only"
echo "cwd: $(pwd)"
echo "args: $*"
echo hi > /tmp/t && echo "tmp: $(cat /tmp/t)"
echo "net: $(sed -n '3,$s/:.*//p' /proc/net/dev | tr -d ' ' | sort | tr '\n' ' ')"
echo "lo: $(cat /sys/class/net/lo/operstate 2>/dev/null; ip -o link show lo 2>/dev/null | grep -o 'UP,LOWER_UP' | head -1)"
echo out > "$2/out.txt"
`

// probeValues reads the "name: value" lines of a rootlessProbe log.
func probeValues(log string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			if _, seen := out[k]; !seen {
				out[k] = v
			}
		}
	}
	return out
}

// TestRootless: jobfs as a normal user, no cgroup of its own: mount, a
// script run and a two-step chain complete as that user; each step is in a
// user namespace mapping only the user's uid, with the private root of
// root mode; config/network none leaves only lo; every run's log starts
// with "limits not enforced: ..." and --require-limits fails the run.
func TestRootless(t *testing.T) {
	rootlessSkip(t)
	u := rootlessUser(t)
	d := startUserDaemon(t, u, "")
	if out := d.output(); !strings.Contains(out, "user, mount, pid, ipc and uts namespaces (as uid "+u.uid+")") {
		t.Errorf("the daemon does not say its steps run in user namespaces:\n%s", out)
	}
	host, _ := os.Hostname()

	t.Run("script", func(t *testing.T) {
		status, log := d.run(t, "probe", rootlessProbe)
		if status != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED; log:\n%s", status, log)
		}
		first, _, _ := strings.Cut(log, "\n")
		if !strings.HasPrefix(first, "limits not enforced: ") || !strings.Contains(first, "chown") {
			t.Errorf("first log line = %q, want limits not enforced: <reason with the way out>", first)
		}
		v := probeValues(log)
		want := map[string]string{
			"uid":     u.uid,
			"uid_map": u.uid + " " + u.uid + " 1",
			"mypid":   "", // checked below
			"input":   "read-only",
			"usr":     "read-only",
			"etc":     "read-only",
			"cwd":     "/app",
			"args":    "/input /output",
			"tmp":     "hi",
		}
		for k, w := range want {
			if w != "" && v[k] != w {
				t.Errorf("in the step, %s = %q, want %q", k, v[k], w)
			}
		}
		if !strings.Contains(v["pid1"], "jobfs") || v["mypid"] == "1" {
			t.Errorf("pid 1 is %q and the step is pid %s; want the step's init as pid 1", v["pid1"], v["mypid"])
		}
		if v["hostname"] == "" || v["hostname"] == host {
			t.Errorf("hostname in the step = %q, the host's is %q: want its own", v["hostname"], host)
		}
		if !strings.Contains(v["net"], "eth") && !strings.Contains(v["net"], "en") && strings.TrimSpace(v["net"]) == "lo" {
			t.Errorf("network host: the step sees only %q", v["net"])
		}
		if got := d.ok(t, `cat mnt/probe/runs/1/result`); got != "out\n" {
			t.Errorf("result = %q, want out", got)
		}
		if st, err := os.Stat(filepath.Join(d.state, "jobs")); err != nil || fmt.Sprint(st.Sys().(*syscall.Stat_t).Uid) != u.uid {
			t.Errorf("the state folder's jobs/ is not the user's: %v", err)
		}
	})

	t.Run("network none", func(t *testing.T) {
		status, log := d.run(t, "offline", rootlessProbe, "network", "none")
		if status != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED; log:\n%s", status, log)
		}
		v := probeValues(log)
		if v["net"] != "lo " {
			t.Errorf("network none: the step sees %q, want only lo", v["net"])
		}
		if !strings.Contains(v["lo"], "UP") && !strings.Contains(v["lo"], "unknown") {
			t.Errorf("network none: lo is %q, want it up", v["lo"])
		}
		r := d.sh(t, `echo off > mnt/offline/config/network`)
		if r.code == 0 || !strings.Contains(r.err, "Invalid argument") {
			t.Errorf("config/network off: want Invalid argument:\n%s", r)
		}
		if log := d.ok(t, `tail -n 1 mnt/offline/log`); !strings.Contains(log, "write host") {
			t.Errorf("job log does not say what config/network takes: %q", log)
		}
	})

	t.Run("chain", func(t *testing.T) {
		repos := filepath.Join(u.home, "repos", u.name)
		d.ok(t, `for i in first second; do mkdir -p "$R/$i"; done
printf '#!/bin/sh\necho "first as $(id -u)"\necho 21 > "$2/n"\n' > "$R/first/entrypoint"
printf '#!/bin/sh\necho "second as $(id -u) in $(cat /proc/self/uid_map | tr -s " ")"\necho $(( $(cat /input/n) * 2 )) > "$2/n"\n' > "$R/second/entrypoint"
chmod 755 "$R"/*/entrypoint
mkdir mnt/chain && printf 'a <- first\nb <- second\na -> b\n' > mnt/chain/config/chains`, "R="+repos)
		status, log := d.trigger(t, "chain")
		if status != "COMPLETED" {
			t.Fatalf("chain ended %s, want COMPLETED; log:\n%s", status, log)
		}
		if got := d.ok(t, `cat mnt/chain/runs/1/result`); got != "42\n" {
			t.Errorf("chain result = %q, want 42", got)
		}
		if !strings.Contains(log, "[a] first as "+u.uid) || !strings.Contains(log, "[b] second as "+u.uid+" in ") || !strings.Contains(log, " "+u.uid+" "+u.uid+" 1\n") {
			t.Errorf("chain log does not show both steps as %s in a user namespace:\n%s", u.uid, log)
		}
	})

	t.Run("schedule", func(t *testing.T) {
		// A tick's step, set up ahead in the user's namespaces, begins at
		// the tick (TestScheduledStepOnItsTick, as root).
		d.ok(t, `mkdir mnt/tick && echo script > mnt/tick/config/type && printf '#!/bin/sh\ndate +%%s.%%N\n' > mnt/tick/config/script && echo '@every 1s' > mnt/tick/config/schedule`)
		status := d.ok(t, `until [ -e mnt/tick/runs/2 ]; do sleep 0.1; done; echo false > mnt/tick/config/enabled; cat mnt/tick/runs/2/wait`)
		if strings.TrimSpace(status) != "COMPLETED" {
			t.Fatalf("scheduled run 2 ended %s", status)
		}
		var doc struct{ Tick string }
		if err := json.Unmarshal([]byte(d.ok(t, `cat mnt/tick/runs/2/status.json`)), &doc); err != nil {
			t.Fatal(err)
		}
		tick, err := time.Parse(time.RFC3339, doc.Tick)
		log := d.ok(t, `cat mnt/tick/runs/2/log`)
		began, ok := stStamp(log)
		if err != nil || !ok {
			t.Fatalf("tick %q (%v), log:\n%s", doc.Tick, err, log)
		}
		if began.Before(tick) {
			t.Errorf("the scheduled step began at %s, before its tick %s", began.Format(time.RFC3339Nano), doc.Tick)
		}
	})

	t.Run("require limits", func(t *testing.T) {
		d.restart(t, "--require-limits")
		status, log := d.trigger(t, "probe")
		if status != "FAILED" {
			t.Fatalf("with --require-limits and no cgroup the run ended %s, want FAILED; log:\n%s", status, log)
		}
		if e := d.ok(t, `cat mnt/probe/runs/latest/error`); !strings.Contains(e, "limits not enforced and --require-limits is set") {
			t.Errorf("error = %q, want limits not enforced and --require-limits is set", e)
		}
		d.restart(t)
	})
}

// TestRootlessCgroupV1: an administrator hands the user a v1 memory cgroup
// (mkdir, chown -R) and starts jobfs in it: steps get cgroups below it and
// a memory hog is killed with "out of memory"; the limits of the
// controllers not handed over are named in the run's first line.
func TestRootlessCgroupV1(t *testing.T) {
	rootlessSkip(t)
	const memory = "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(memory, "memory.limit_in_bytes")); err != nil {
		t.Skipf("no cgroup v1 memory controller at %s: %v", memory, err)
	}
	u := rootlessUser(t)
	cg := filepath.Join(memory, "jobfs-test-"+u.name)
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the daemon's stop (cleanups run last first)
		if err := removeTree(cg); err != nil {
			t.Errorf("remove the test's cgroup %s: %v", cg, err)
		}
	})
	shareCmd(t, "chown", "-R", u.name+":"+u.name, cg)
	d := startUserDaemon(t, u, filepath.Join(cg, "cgroup.procs"))
	if out := d.output(); !strings.Contains(out, "steps run in cgroup v1 with limits") {
		t.Errorf("the daemon does not say its steps run in cgroups:\n%s", out)
	}
	hog := "#!/bin/sh\ngrep memory /proc/self/cgroup\nhead -c 300m /dev/zero | tail > /dev/null\necho survived\n"
	status, log := d.run(t, "hog", hog, "limits/memory", "32")
	if status != "FAILED" {
		t.Fatalf("a 300 MiB hog under a 32 MiB limit ended %s, want FAILED; log:\n%s", status, log)
	}
	if e := d.ok(t, `cat mnt/hog/runs/1/error`); !strings.Contains(e, "out of memory (limit 32 MiB)") {
		t.Errorf("error = %q, want out of memory (limit 32 MiB)", e)
	}
	first, _, _ := strings.Cut(log, "\n")
	if !strings.HasPrefix(first, "limits not enforced: cpu, pids: ") {
		t.Errorf("first log line = %q, want the limits of the controllers not handed over named", first)
	}
	if !strings.Contains(log, "memory:/jobfs-test-"+u.name+"/jobfs/") {
		t.Errorf("the step's memory cgroup is not below the handed-over one:\n%s", log)
	}
	// Setting a limit says at once whether this daemon enforces it.
	d.ok(t, `echo 50 > mnt/hog/config/limits/pids && echo 64 > mnt/hog/config/limits/memory`)
	jobLog := d.ok(t, `tail -n 2 mnt/hog/log`)
	if !strings.Contains(jobLog, "config/limits/pids set to 50 (not enforced by this jobfs: pids: ") ||
		!strings.Contains(jobLog, "config/limits/memory set to 64\n") {
		t.Errorf("the job's log after setting pids and memory:\n%s\nwant pids named not enforced, memory not", jobLog)
	}
}

// removeTree removes a cgroup folder and every cgroup below it, deepest
// first (rmdir; a cgroup's files cannot be removed).
func removeTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return syscall.Rmdir(dir)
}

// TestNetworkNoneRoot: as root too, config/network none gives a step only
// lo, brought up; host (the default) keeps the host's network.
func TestNetworkNoneRoot(t *testing.T) {
	d := startDaemon(t, daemonOpts{})
	d.ok(t, `mkdir mnt/n && echo script > mnt/n/config/type && printf '%s' "$S" > mnt/n/config/script`, "S="+rootlessProbe)
	d.ok(t, `echo '{}' > mnt/n/data`)
	if st := d.waitStatus(t, "n", 1, "COMPLETED", "FAILED"); st != "COMPLETED" {
		t.Fatalf("run ended %s; log:\n%s", st, d.cat(t, "mnt/n/runs/1/log"))
	}
	if v := probeValues(d.cat(t, "mnt/n/runs/1/log")); v["net"] == "lo " {
		t.Errorf("network host: the step sees only lo")
	}
	d.ok(t, `echo none > mnt/n/config/network && echo '{}' > mnt/n/data`)
	if st := d.waitStatus(t, "n", 2, "COMPLETED", "FAILED"); st != "COMPLETED" {
		t.Fatalf("run ended %s; log:\n%s", st, d.cat(t, "mnt/n/runs/2/log"))
	}
	v := probeValues(d.cat(t, "mnt/n/runs/2/log"))
	if v["net"] != "lo " {
		t.Errorf("network none: the step sees %q, want only lo", v["net"])
	}
	if !strings.Contains(v["lo"], "UP") && !strings.Contains(v["lo"], "unknown") {
		t.Errorf("network none: lo is %q, want it up", v["lo"])
	}
}

// rootlessChroot makes a chroot of this host for u: its root read-only (a
// bind of /, so that a stray recursive delete meets EROFS), u's home
// read-write, /proc, and a /dev with only null, zero, urandom and fuse. The
// kernel refuses user namespaces to a process in a chroot (EPERM): a real
// refusal, where the sysctls cannot be changed. Everything is unmounted
// when t ends, and the folder removed with rmdir only.
func rootlessChroot(t *testing.T, u shareUser) string {
	t.Helper()
	c, err := os.MkdirTemp("/run", "jobfs-test-chroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Rmdir(c); err != nil {
			t.Errorf("remove the test's chroot %s: %v (is something still mounted there?)", c, err)
		}
	})
	mount := func(args ...string) {
		t.Helper()
		shareCmd(t, "mount", args...)
	}
	mount("--bind", "/", c)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-R", c).CombinedOutput(); err != nil {
			t.Errorf("umount -R %s: %v: %s", c, err, out)
			exec.Command("umount", "-R", "-l", c).Run() // lazily, so that the rmdir below cannot reach the host's root
		}
	})
	mount("--make-private", c)
	mount("-o", "remount,bind,ro", c)
	mount("--bind", u.home, filepath.Join(c, u.home))
	mount("--rbind", "/proc", filepath.Join(c, "proc"))
	mount("--make-rprivate", filepath.Join(c, "proc"))
	mount("-t", "tmpfs", "-o", "mode=0755,nosuid", "jobfs-test-dev", filepath.Join(c, "dev"))
	for _, dev := range []string{"null", "zero", "urandom", "fuse"} {
		p := filepath.Join(c, "dev", dev)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		mount("--bind", "/dev/"+dev, p)
	}
	return c
}

// TestRootlessNoUserNS: where the kernel refuses user namespaces (here: in
// a chroot), a normal user's runs start without them, COMPLETE, and their
// log's first line says what was not applied and why; --require-isolation
// fails them instead.
func TestRootlessNoUserNS(t *testing.T) {
	rootlessSkip(t)
	if _, err := exec.LookPath("chroot"); err != nil {
		t.Skipf("chroot is needed to have user namespaces refused: %v", err)
	}
	u := rootlessUser(t)
	c := rootlessChroot(t, u)
	d := &userDaemon{u: u, home: u.home, bin: filepath.Join(u.home, "bin", "jobfs"), chroot: c,
		mnt: filepath.Join(u.home, "mnt"), state: filepath.Join(u.home, "state"),
		outPath: filepath.Join(t.TempDir(), "jobfs.out")}
	t.Cleanup(func() { d.stop(t) })
	d.start(t)
	if out := d.output(); !strings.Contains(out, "isolation not applied: this user cannot create user namespaces here: ") {
		t.Errorf("the daemon does not say its steps run without namespaces:\n%s", out)
	}
	status, log := d.run(t, "plain", "#!/bin/sh\necho \"uid $(id -u)\"\necho out > \"$2/out.txt\"\n", "network", "none")
	if status != "COMPLETED" {
		t.Fatalf("run ended %s, want COMPLETED; log:\n%s", status, log)
	}
	lines := strings.Split(log, "\n")
	want := "isolation not applied: user, mount, pid, ipc and uts namespaces, private root (the host's files read-only, private /tmp, /input read-only), network none: this user cannot create user namespaces here: "
	if !strings.HasPrefix(lines[0], want) || !strings.Contains(lines[0], "operation not permitted") {
		t.Errorf("first log line = %q, want %q and the reason", lines[0], want)
	}
	if len(lines) < 3 || !strings.HasPrefix(lines[1], "limits not enforced: ") || lines[2] != "uid "+u.uid {
		t.Errorf("then want the limits line and the step's output as uid %s:\n%s", u.uid, log)
	}
	d.restart(t, "--require-isolation")
	status, log = d.trigger(t, "plain")
	if status != "FAILED" {
		t.Fatalf("with --require-isolation the run ended %s, want FAILED; log:\n%s", status, log)
	}
	if e := d.ok(t, `cat mnt/plain/runs/latest/error`); !strings.Contains(e, "isolation not applied and --require-isolation is set: ") {
		t.Errorf("error = %q, want isolation not applied and --require-isolation is set", e)
	}
}

// TestRootlessStopLeavesRunning: a normal user's daemon stops at once while
// a step runs, as root's does (the step's namespace, made in a user
// namespace, keeps a copy of the daemon's mount, which held the
// connection, and the daemon's stop, until the step ended), and the next
// daemon finds the run and its end.
func TestRootlessStopLeavesRunning(t *testing.T) {
	rootlessSkip(t)
	u := rootlessUser(t)
	d := startUserDaemon(t, u, "")
	d.ok(t, `mkdir mnt/slow && echo script > mnt/slow/config/type && printf '#!/bin/sh\necho started\nsleep 12\necho done\n' > mnt/slow/config/script && echo > mnt/slow/data`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(pollEvery) {
		if strings.Contains(d.ok(t, `cat mnt/slow/runs/1/log`), "started") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run 1 did not start:\n%s", d.output())
		}
	}
	began := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(8 * time.Second):
		t.Fatalf("jobfs as %s did not exit within 8 s of SIGTERM while its step runs (12 s): it waited for the step:\n%s", u.name, d.output())
	}
	t.Logf("stopped in %v with its step running", time.Since(began).Round(time.Millisecond))
	d.cmd = nil
	d.start(t)
	if st := strings.TrimSpace(d.ok(t, `cat mnt/slow/runs/1/wait`)); st != "COMPLETED" {
		t.Errorf("run 1 ended %s after the restart, want COMPLETED; log:\n%s", st, d.ok(t, `cat mnt/slow/runs/1/log`))
	}
	if log := d.ok(t, `cat mnt/slow/runs/1/log`); !strings.Contains(log, "done") {
		t.Errorf("run 1's log lacks the step's last line:\n%s", log)
	}
}
