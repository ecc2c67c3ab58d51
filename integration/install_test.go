//go:build linux

package integration

// Installed like any filesystem: mount -t fuse.jobfs and fstab lines through
// mount.fuse3 (the helper form, daemon in the background), umount ending the
// daemon, sd_notify readiness, and make install's layout and units.

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// installedJobfs is where mount.fuse3 finds jobfs: it runs the type's
// program through /bin/sh, and mount(8) hands it no PATH, so only the
// shell's default folders count.
const installedJobfs = "/usr/local/bin/jobfs"

// helperDaemon prepares folders for a jobfs that mount(8) starts, and
// links the binary under test at /usr/local/bin/jobfs for the test's
// length. Its cleanup unmounts, kills what is left and reports it.
func helperDaemon(t *testing.T) *daemon {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if os.Geteuid() != 0 {
		t.Skip("mount -t fuse.jobfs is root's: not root")
	}
	if _, err := exec.LookPath("mount.fuse3"); err != nil {
		if _, err := os.Stat("/sbin/mount.fuse3"); err != nil {
			t.Skip("no mount.fuse3 (apt-get install fuse3)")
		}
	}
	removeStaleLink()
	if _, err := os.Lstat(installedJobfs); err == nil {
		t.Skipf("%s exists (an installed jobfs): this test links the binary under test there and does not replace one", installedJobfs)
	}
	dir := t.TempDir()
	d := &daemon{t: t, dir: dir, out: &syncBuffer{},
		mnt: filepath.Join(dir, "mnt"), state: filepath.Join(dir, "state"),
		repos: filepath.Join(dir, "repos"), bin: filepath.Join(dir, "jobfs")}
	for _, p := range []string{d.mnt, d.repos} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mountpointsMu.Lock()
	mountpoints = append(mountpoints, d.mnt)
	mountpointsMu.Unlock()
	if err := linkBinaries(jobfsBin, dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(d.bin, installedJobfs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.mounted() {
			t.Errorf("%s still mounted at the end of the test", d.mnt)
			if out, err := exec.Command("umount", "-l", d.mnt).CombinedOutput(); err != nil {
				t.Errorf("umount -l %s: %v: %s", d.mnt, err, out)
			}
		}
		if left := d.killLeftovers(); len(left) > 0 {
			t.Errorf("processes left behind by jobfs (killed now):\n%s", strings.Join(left, "\n"))
		}
		if err := os.Remove(installedJobfs); err != nil {
			t.Errorf("remove %s: %v", installedJobfs, err)
		}
		log, _ := os.ReadFile(filepath.Join(d.state, "jobfs.log"))
		if bytes.Contains(log, []byte("WARNING: DATA RACE")) {
			t.Errorf("the daemon reported a data race")
		}
		if t.Failed() {
			t.Logf("state/jobfs.log:\n%s", log)
		}
	})
	return d
}

// removeStaleLink removes a link to a test binary that a killed run of
// these tests left at /usr/local/bin/jobfs (its target is gone).
func removeStaleLink() {
	target, err := os.Readlink(installedJobfs)
	if err != nil || !strings.HasPrefix(target, filepath.Join(os.TempDir(), "TestInstall")) {
		return
	}
	if _, err := os.Stat(target); os.IsNotExist(err) {
		// Dropped: if it stays, the caller skips, naming it.
		_ = os.Remove(installedJobfs)
	}
}

// daemonPIDs are the live jobfs daemons of d (not step inits).
func (d *daemon) daemonPIDs() []int {
	var pids []int
	for pid, cmd := range d.leftovers() {
		if strings.Contains(cmd, " mount ") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// umountEndsDaemon unmounts d.mnt with umount(8) and checks that the
// daemon saw it, logged "stopped" (its last line before exit 0) and is gone.
func (d *daemon) umountEndsDaemon(t *testing.T, logPath string) {
	t.Helper()
	if len(d.daemonPIDs()) != 1 {
		t.Fatalf("want one jobfs daemon in the background, have %v", d.daemonPIDs())
	}
	d.ok(t, `umount mnt`)
	if !eventually(stopTimeout, func() bool { return len(d.daemonPIDs()) == 0 }) {
		t.Fatalf("the daemon did not exit within %v of umount", stopTimeout)
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?s)jobfs: \S+/mnt was unmounted from outside; stopping\n.*jobfs: stopped\n$`).Match(log) {
		t.Errorf("the log does not end with the unmount and a clean stop:\n%s", log)
	}
}

// TestInstallMountType: mount -t fuse.jobfs STATE MNT -o allow_other returns
// once mounted, a job made through the mount runs, and umount ends the
// daemon cleanly.
func TestInstallMountType(t *testing.T) {
	d := helperDaemon(t)
	d.ok(t, `mount -t fuse.jobfs state mnt -o allow_other,max_active=2,repos="$PWD/repos"`)
	if !d.mounted() {
		t.Fatal("mount returned 0 but nothing is mounted")
	}
	out := d.ok(t, `findmnt -n -o FSTYPE,OPTIONS mnt`)
	if !strings.HasPrefix(out, "fuse.jobfs ") || !strings.Contains(out, "allow_other") ||
		!strings.Contains(out, "nosuid") || !strings.Contains(out, "nodev") {
		t.Errorf("findmnt mnt = %q, want fuse.jobfs with allow_other,nosuid,nodev", out)
	}
	d.scriptJob(t, "hello", "#!/bin/sh\necho hi from the helper mount\n")
	d.trigger(t, "hello", "{}")
	if st := d.waitRun(t, "hello", 1); st != "COMPLETED" {
		t.Fatalf("run 1 is %s, want COMPLETED:\n%s", st, d.cat(t, "mnt/hello/runs/1/log"))
	}
	d.wantFile(t, "mnt/hello/runs/1/log", "hi from the helper mount\n")
	log, _ := os.ReadFile(filepath.Join(d.state, "jobfs.log"))
	if !regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d jobfs: ready: \S+/mnt mounted \(state \S+/state, repos \S+/repos\)$`).Match(log) {
		t.Errorf("no ready line in state/jobfs.log:\n%s", log)
	}
	d.umountEndsDaemon(t, filepath.Join(d.state, "jobfs.log"))
}

// TestInstallFstab: an fstab line with the options systemd and mount(8) add
// mounts with `mount MOUNTPOINT` and unmounts with umount; log= moves the log.
func TestInstallFstab(t *testing.T) {
	d := helperDaemon(t)
	logPath := filepath.Join(d.dir, "daemon.log")
	line := d.state + " " + d.mnt + " fuse.jobfs defaults,allow_other,_netdev,noauto,nofail," +
		"x-systemd.requires=local-fs.target,noatime,log=" + logPath + ",grace=2s 0 0\n"
	fstab := filepath.Join(d.dir, "fstab")
	if err := os.WriteFile(fstab, []byte("# jobfs\n"+line), 0o644); err != nil {
		t.Fatal(err)
	}
	d.ok(t, `mount -T fstab "$PWD/mnt"`)
	if !d.mounted() {
		t.Fatal("mount returned 0 but nothing is mounted")
	}
	d.ok(t, `mkdir mnt/viafstab && test -d mnt/viafstab/config`)
	if _, err := os.Stat(filepath.Join(d.state, "jobfs.log")); err == nil {
		t.Errorf("log=%s given, yet state/jobfs.log was written", logPath)
	}
	d.umountEndsDaemon(t, logPath)
}

// TestInstallHelperRefuses: an unknown option is refused by name and a
// daemon that cannot start hands its reason to mount's caller; neither
// leaves a mount or a process.
func TestInstallHelperRefuses(t *testing.T) {
	d := helperDaemon(t)
	r := d.fails(t, `mount -t fuse.jobfs state mnt -o allow_other,fancy_cache=1`, `unknown mount option "fancy_cache=1"`)
	if strings.Contains(r.err, "ready") {
		t.Errorf("refused, yet it speaks of readiness:\n%s", r)
	}
	d.fails(t, `mount -t fuse.jobfs state mnt -o max_active=many`, `option max_active=many: invalid value`)
	d.fails(t, `mount -t fuse.jobfs state mnt -o trusted_keys=/nonexistent/keys`, `--trusted-keys: open /nonexistent/keys: no such file or directory`)
	if d.mounted() {
		t.Error("a refused mount left a mount")
	}
	if pids := d.daemonPIDs(); len(pids) > 0 {
		t.Errorf("a refused mount left daemons %v", pids)
	}
}

// TestInstallNotify: with NOTIFY_SOCKET set, the daemon sends READY=1 once
// the mount answers and STOPPING=1 on SIGTERM (go-systemd's sd_notify), and
// its ready line is the form --help documents.
func TestInstallNotify(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mnt := filepath.Join(dir, "mnt")
	mountpointsMu.Lock()
	mountpoints = append(mountpoints, mnt)
	mountpointsMu.Unlock()
	var stderr syncBuffer
	cmd := exec.Command(jobfsBin, "mount", "--state", filepath.Join(dir, "state"), mnt)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
		if len(mountsUnder(mnt)) > 0 {
			exec.Command("umount", "-l", mnt).Run()
			t.Errorf("%s still mounted", mnt)
		}
		if t.Failed() {
			t.Logf("jobfs output:\n%s", stderr.String())
		}
	}()

	msg := readNotify(t, conn)
	if msg != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", msg)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil || st.Type != 0x65735546 { // FUSE_SUPER_MAGIC
		t.Fatalf("READY=1 came before the mount answers: statfs %s: type %#x, %v", mnt, st.Type, err)
	}
	help, _ := exec.Command(jobfsBin, "mount", "--help").CombinedOutput()
	documented := regexp.MustCompile(`(?m)^\s*(DATE TIME jobfs: ready: .*)$`).FindSubmatch(help)
	if documented == nil {
		t.Fatalf("jobfs mount --help documents no ready line:\n%s", help)
	}
	form := regexp.QuoteMeta(string(documented[1]))
	for _, r := range []struct{ word, re string }{
		{"DATE", `\d{4}/\d\d/\d\d`}, {"TIME", `\d\d:\d\d:\d\d`},
		{"MOUNTPOINT", regexp.QuoteMeta(mnt)}, {"DIR", `/[^,()]+`},
	} {
		form = strings.ReplaceAll(form, r.word, r.re)
	}
	if !regexp.MustCompile(`(?m)^` + form + `$`).MatchString(stderr.String()) {
		t.Errorf("no line of the documented form %q (as regexp %s) in the daemon's output", documented[1], form)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if msg := readNotify(t, conn); msg != "STOPPING=1" {
		t.Errorf("after SIGTERM the notification is %q, want STOPPING=1", msg)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("jobfs exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("jobfs did not exit within %v of SIGTERM", stopTimeout)
	}
}

// readNotify returns the next datagram on the notify socket.
func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(readyTimeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification within %v: %v", readyTimeout, err)
	}
	return string(buf[:n])
}

// TestInstallMakeInstall: make install lays out every file under DESTDIR
// (binaries side by side, units, man page, completion); the man page
// renders, and systemd-analyze verify passes on both units installed with
// a real PREFIX.
func TestInstallMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "build", "jobfs") // not the checkout's bin/
	dest := filepath.Join(tmp, "dest")
	makeInstall(t, repo, "DESTDIR="+dest, "BIN="+bin)
	want := map[string]os.FileMode{
		"/usr/local/bin/jobfs":                               0o755,
		"/usr/local/bin/jobfs-init":                          0o755,
		"/usr/local/bin/jobfs-shim":                          0o755,
		"/usr/local/lib/systemd/system/jobfs.service":        0o644,
		"/usr/local/lib/systemd/user/jobfs.service":          0o644,
		"/usr/local/share/man/man8/jobfs.8":                  0o644,
		"/usr/local/share/bash-completion/completions/jobfs": 0o644,
	}
	var got []string
	filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			got = append(got, strings.TrimPrefix(p, dest))
		}
		return nil
	})
	if len(got) != len(want) {
		t.Errorf("installed %d files, want %d: %v", len(got), len(want), got)
	}
	for p, mode := range want {
		fi, err := os.Stat(dest + p)
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %#o, want %#o", p, fi.Mode().Perm(), mode)
		}
	}
	unit, _ := os.ReadFile(dest + "/usr/local/lib/systemd/system/jobfs.service")
	if !bytes.Contains(unit, []byte("\nExecStart=/usr/local/bin/jobfs mount ")) ||
		!bytes.Contains(unit, []byte("\nType=notify\n")) || !bytes.Contains(unit, []byte("\nDelegate=yes\n")) {
		t.Errorf("system unit:\n%s", unit)
	}
	if out, err := exec.Command(dest+"/usr/local/bin/jobfs", "version").CombinedOutput(); err != nil {
		t.Errorf("installed jobfs version: %v: %s", err, out)
	}
	if out, err := exec.Command("bash", "-n", dest+"/usr/local/share/bash-completion/completions/jobfs").CombinedOutput(); err != nil {
		t.Errorf("bash -n completion: %v: %s", err, out)
	}
	checkManPage(t, dest+"/usr/local/share/man/man8/jobfs.8")

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("no systemd-analyze (apt-get install systemd): units not verified")
	}
	prefix := filepath.Join(tmp, "prefix")
	makeInstall(t, repo, "PREFIX="+prefix, "BIN="+bin)
	verifyUnit(t, prefix, "", prefix+"/lib/systemd/system/jobfs.service")
	verifyUnit(t, prefix, "--user", prefix+"/lib/systemd/user/jobfs.service")
}

func makeInstall(t *testing.T, repo string, vars ...string) {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-C", repo, "install"}, vars...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install %s: %v\n%s", strings.Join(vars, " "), err, out)
	}
}

// checkManPage renders the page with man -l and wants no warning.
func checkManPage(t *testing.T, page string) {
	t.Helper()
	if _, err := exec.LookPath("man"); err != nil {
		t.Logf("no man (apt-get install man-db): %s not rendered", page)
		return
	}
	cmd := exec.Command("man", "--warnings", "-l", page)
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("man -l %s: %v\n%s", page, err, stderr.String())
	}
	for _, s := range []string{"NAME", "jobs as a filesystem", "fuse.jobfs", "READY=1", "jobfs: ready: MOUNTPOINT mounted"} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("man -l %s lacks %q", page, s)
		}
	}
}

// verifyUnit runs systemd-analyze verify on an installed unit, with its
// man page found under prefix; any message is a failure (verify exits 0
// on unknown keys).
func verifyUnit(t *testing.T, prefix, scope, unit string) {
	t.Helper()
	args := []string{"verify"}
	if _, err := exec.LookPath("man"); err != nil {
		t.Logf("no man (apt-get install man-db): Documentation=man:jobfs(8) not checked")
		args = append(args, "--man=no")
	}
	if scope != "" {
		args = append([]string{scope}, args...)
	}
	cmd := exec.Command("systemd-analyze", append(args, unit)...)
	runtime := t.TempDir() // the user manager wants a runtime folder
	cmd.Env = append(os.Environ(), "MANPATH="+prefix+"/share/man", "XDG_RUNTIME_DIR="+runtime, "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze %s %s: %v\n%s", strings.Join(args, " "), unit, err, out)
	}
}
