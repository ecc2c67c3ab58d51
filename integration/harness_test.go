//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs/etcdstore/etcdtest"
)

// Bounds of the harness's waits. They are deadlines for something that
// should happen, never expectations of how fast.
const (
	readyTimeout = 30 * time.Second // daemon start until its "ready:" line
	stopTimeout  = 30 * time.Second // SIGTERM until the daemon has exited
	runTimeout   = 45 * time.Second // a run reaching the status a test waits for
	shTimeout    = 60 * time.Second // one shell command
	pollEvery    = 50 * time.Millisecond
)

var (
	jobfsBin  string // the binary under test
	raceBuilt bool   // jobfsBin was built with -race

	plainOnce  sync.Once // builds plainBin for tests that measure
	plainBin   string
	plainErr   error
	skipReason string // why every test skips, or "" when they can run
	suiteDir   string // holds the built binary

	mountpointsMu sync.Mutex
	mountpoints   []string // of every daemon started, checked at the end; guarded by mountpointsMu
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if skipReason = hostProblem(); skipReason == "" {
		dir, err := os.MkdirTemp("", "jobfs-integration-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		suiteDir = dir
		if jobfsBin, err = buildJobfs(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	closeInheritedOnExec()
	installTools("rsync")
	code := m.Run()
	etcdtest.Cleanup() // the etcd member binary cluster_test.go built
	if err := suiteLeaks(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		code = 1
	}
	return code
}

// installTools installs, as root through apt, the tools among tools that
// the tests drive and a fresh Debian lacks (rsync): once, before any test,
// so that no test's outcome depends on which ran first. Where that fails
// (no root, no network) the tests that need one skip (codeNeed).
func installTools(tools ...string) {
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 || os.Geteuid() != 0 {
		return
	}
	install := append([]string{"install", "-y", "-qq"}, missing...)
	if exec.Command("apt-get", install...).Run() == nil {
		return
	}
	if out, err := exec.Command("apt-get", "update", "-qq").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "apt-get update: %v\n%s", err, out)
		return
	}
	if out, err := exec.Command("apt-get", install...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "apt-get install %s: %v (the tests that need it skip)\n%s", strings.Join(missing, " "), err, out)
	}
}

// closeInheritedOnExec keeps the fds this process inherited (a shell's, a
// CI runner's) from reaching the daemons, and so their steps: os/exec
// passes on every fd not marked close-on-exec.
func closeInheritedOnExec() {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscanf(e.Name(), "%d", &fd); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// hostProblem says why jobfs cannot mount here, or "".
func hostProblem() string {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "no /dev/fuse (modprobe fuse): " + err.Error()
	}
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			return "not root and no fusermount3 (apt-get install fuse3)"
		}
	}
	return ""
}

// buildJobfs builds cmd/jobfs, cmd/jobfs-init and cmd/jobfs-shim into
// dir, with -race where the toolchain can, or returns $JOBFS_BIN (whose
// jobfs-init and jobfs-shim, if beside it, are used too).
func buildJobfs(dir string) (string, error) {
	if bin := os.Getenv("JOBFS_BIN"); bin != "" {
		return filepath.Abs(bin)
	}
	bin, out, err := buildInto(filepath.Join(dir, "race"), "-race")
	raceBuilt = err == nil
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: go build -race failed (%v), building without it:\n%s", err, out)
		if bin, out, err = buildInto(filepath.Join(dir, "plain")); err != nil {
			return "", fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	return bin, nil
}

// buildInto builds jobfs, jobfs-init and jobfs-shim into dir and returns
// jobfs's path.
func buildInto(dir string, flags ...string) (string, []byte, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go" // where .ci/run and the README put it
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	for _, name := range stepBinaries {
		args := append(append([]string{"build"}, flags...), "-o", filepath.Join(dir, name), "../cmd/"+name)
		if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
			return "", out, err
		}
	}
	return filepath.Join(dir, "jobfs"), nil, nil
}

// plainJobfs is the binary without -race, for tests that measure speed:
// the race runtime makes the daemon several times slower. It is jobfsBin
// when that was built without it.
func plainJobfs() (string, error) {
	if !raceBuilt {
		return jobfsBin, nil
	}
	plainOnce.Do(func() {
		var out []byte
		if plainBin, out, plainErr = buildInto(filepath.Join(suiteDir, "plain")); plainErr != nil {
			plainErr = fmt.Errorf("go build: %v\n%s", plainErr, out)
		}
	})
	return plainBin, plainErr
}

// stepBinaries are the programs make build makes: the daemon, and the
// step init and shim it finds beside itself.
var stepBinaries = []string{"jobfs", "jobfs-init", "jobfs-shim"}

// linkBinaries links bin into dir as jobfs, and the jobfs-init and
// jobfs-shim beside it, if any, into dir: the daemon finds its step init
// and shim beside itself, and a test tells a daemon's processes apart by
// /proc/PID/exe.
func linkBinaries(bin, dir string) error {
	if err := linkOrCopy(bin, filepath.Join(dir, "jobfs")); err != nil {
		return err
	}
	for _, name := range stepBinaries[1:] {
		p := filepath.Join(filepath.Dir(bin), name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := linkOrCopy(p, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// suiteLeaks reports mounts of this suite that outlived their test, and
// fds of this process left open in a test's folders. (Processes are
// checked per daemon, in its cleanup.)
func suiteLeaks() error {
	if suiteDir == "" {
		return nil
	}
	var problems []string
	mountpointsMu.Lock()
	for _, mnt := range mountpoints {
		for _, p := range mountsUnder(mnt) {
			problems = append(problems, "mount left: "+p)
		}
	}
	mountpointsMu.Unlock()
	problems = append(problems, emptyCgroupParents()...)
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if strings.HasPrefix(target, os.TempDir()+"/Test") {
			problems = append(problems, "fd left open: "+target)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// emptyCgroupParents reports each machine-wide jobfs cgroup folder left
// with no daemon's folder in it: every test daemon has stopped by then, and
// the last to stop removes it (a `make run` serving meanwhile keeps its own
// folder in it).
func emptyCgroupParents() []string {
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/jobfs")
	parents = append(parents, "/sys/fs/cgroup/jobfs")
	var left []string
	for _, p := range parents {
		ents, err := os.ReadDir(p)
		if err != nil {
			continue // none in this hierarchy
		}
		if !slices.ContainsFunc(ents, os.DirEntry.IsDir) {
			left = append(left, "empty cgroup folder left: "+p)
		}
	}
	return left
}

// daemonOpts are the flags of one `jobfs mount`.
type daemonOpts struct {
	maxActive int      // --max-active, 0: the daemon's default
	args      []string // more flags
	plain     bool     // run the binary built without -race (tests that measure)
	// outlive: runs outlive the daemon (jobfs's default); without it the
	// tests pass --stop-runs-on-exit, so a stop leaves no process behind.
	outlive bool
	// inherit: descriptors the daemon is started with, as fd 3 and on (a
	// pipe a CI job or an ssh session leaves open).
	inherit []*os.File
	// nofile: the daemon's RLIMIT_NOFILE (prlimit), 0: this process's.
	nofile int
	// linkedMnt: the mountpoint given is a symlink to the folder mounted.
	linkedMnt bool
}

// daemon is one jobfs mount of a test: its folders and its current process.
// Restarts keep the folders.
type daemon struct {
	t                 *testing.T // the test that owns it (cleanup)
	opts              daemonOpts
	dir               string // holds mnt/, state/, repos/; shells run here
	mnt, state, repos string // absolute
	mountedAt         string // mnt with its symlinks resolved, as mountinfo names it; "": mnt (mountPath)
	bin               string // this daemon's link to jobfsBin: its processes are told apart by /proc/PID/exe
	out               *syncBuffer
	outPath           string // the daemon's stdout and stderr, outside dir
	starts            int

	// The current process. cmd, done and stoppedWithTerm change only in
	// the test's goroutine (start, stop, cleanup).
	cmd             *exec.Cmd
	done            chan struct{} // closed once cmd has exited and its output is in out
	stoppedWithTerm bool          // the last process ended on our SIGTERM
	restarted       bool          // start was retried once after a start-up stall

	mu      sync.Mutex
	exitErr error // cmd.Wait's result, set before done is closed; guarded by mu
}

// startDaemon mounts a fresh jobfs for t on folders in t.TempDir() and
// stops it when t ends, passed or failed.
func startDaemon(t *testing.T, opts daemonOpts) *daemon {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	dir := t.TempDir()
	d := &daemon{
		t: t, opts: opts, dir: dir, out: &syncBuffer{},
		mnt:     filepath.Join(dir, "mnt"),
		state:   filepath.Join(dir, "state"),
		repos:   filepath.Join(dir, "repos"),
		bin:     filepath.Join(dir, "jobfs"),
		outPath: filepath.Join(t.TempDir(), "jobfs.out"),
	}
	mounted := d.mnt
	if opts.linkedMnt {
		mounted = filepath.Join(dir, "mnt-real")
		if err := os.Symlink(mounted, d.mnt); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{mounted, d.state, d.repos} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d.mountedAt = mounted
	mountpointsMu.Lock()
	mountpoints = append(mountpoints, mounted)
	mountpointsMu.Unlock()
	bin := jobfsBin
	if opts.plain {
		var err error
		if bin, err = plainJobfs(); err != nil {
			t.Fatal(err)
		}
	}
	if err := linkBinaries(bin, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.cleanup)
	d.start(t)
	return d
}

func linkOrCopy(src, dst string) error {
	if os.Link(src, dst) == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// args are the daemon's command line.
func (d *daemon) args() []string {
	a := []string{"mount", "--state", d.state, "--repos", d.repos, "--grace", "1s"}
	if d.opts.maxActive > 0 {
		a = append(a, "--max-active", fmt.Sprint(d.opts.maxActive))
	}
	if testing.Verbose() {
		a = append(a, "--debug")
	}
	if !d.opts.outlive && os.Getenv("JOBFS_OUTLIVE") == "" { // JOBFS_OUTLIVE=1: every test's steps under shims
		a = append(a, "--stop-runs-on-exit")
	}
	return append(append(a, d.opts.args...), d.mnt)
}

// start runs the daemon and waits for its "ready:" line.
//
// The daemon writes to a file (followed into d.out), not a pipe: if this
// test binary dies (a -timeout panic runs no cleanup), Pdeathsig sends the
// daemon SIGTERM, and with no broken pipe to write to it unmounts as a
// person's daemon would. Pdeathsig is tied to the forking OS thread, which
// the Go runtime only ends for goroutines that lock it; tests don't.
func (d *daemon) start(t *testing.T) {
	t.Helper()
	d.starts++
	fmt.Fprintf(d.out, "=== jobfs %s (start %d)\n", strings.Join(d.args(), " "), d.starts)
	f, err := os.OpenFile(d.outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	w := &readyWriter{out: d.out, ready: make(chan struct{})}
	cmd := exec.Command(d.bin, d.args()...)
	if n := d.opts.nofile; n > 0 { // prlimit execs the daemon in its own process
		cmd = exec.Command("prlimit", append([]string{fmt.Sprintf("--nofile=%d:%d", n, n), d.bin}, d.args()...)...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.ExtraFiles = d.opts.inherit
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	err = cmd.Start()
	f.Close()
	if err != nil {
		t.Fatalf("start jobfs: %v", err)
	}
	exited, done := make(chan struct{}), make(chan struct{})
	d.cmd, d.done, d.stoppedWithTerm = cmd, done, false
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.exitErr = err
		d.mu.Unlock()
		close(exited)
	}()
	go func() {
		follow(d.outPath, st.Size(), w, exited)
		close(done)
	}()
	select {
	case <-w.ready:
	case <-done:
		if w.stalled() && !d.restarted {
			// The rare stall of go-fuse's start-up poll (fs.awaitAnswer),
			// its goroutines showing it in go-fuse's pollHack (a stall in
			// jobfs's own code fails the test): the daemon gave up; start
			// it again once, as a service manager would, and keep the log.
			d.restarted = true
			t.Logf("jobfs stalled at start and gave up; starting it again:\n%s", d.out)
			d.start(t)
			return
		}
		t.Fatalf("jobfs mount exited before it was ready (%v):\n%s", d.exitError(), d.out)
	case <-time.After(readyTimeout):
		d.kill(t)
		t.Fatalf("jobfs mount printed no ready: line within %v:\n%s", readyTimeout, d.out)
	}
}

// kill ends the daemon with SIGKILL and waits for it. A daemon killed
// while one of its own threads waits on its own mount (go-fuse's start-up
// poll) cannot finish dying: its exit's close of that file sends a FLUSH
// no one is left to answer. After stopTimeout the mount's connection is
// aborted, which fails that FLUSH, so one test fails and the suite goes on;
// a daemon that lives on even then is left (reported) rather than waited
// for until the suite's timeout.
func (d *daemon) kill(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Kill() // it may have ended meanwhile
	select {
	case <-d.done:
		return
	case <-time.After(stopTimeout):
	}
	t.Errorf("jobfs did not end within %v of SIGKILL; aborting its mount's connection: %v", stopTimeout, abortMount(d.mountPath()))
	select {
	case <-d.done:
	case <-time.After(stopTimeout):
		t.Errorf("jobfs (pid %d) did not end after its connection was aborted either; left", d.cmd.Process.Pid)
	}
}

// abortMount aborts the FUSE connection of the mount at mnt: as root by
// umount2 with MNT_FORCE (FUSE's umount_begin aborts it), otherwise by the
// connection's abort file in fusectl, where that is mounted.
func abortMount(mnt string) error {
	if os.Geteuid() == 0 {
		return syscall.Unmount(mnt, syscall.MNT_FORCE|syscall.MNT_DETACH)
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || unescapeMountinfo(f[4]) != mnt {
			continue
		}
		_, minor, ok := strings.Cut(f[2], ":")
		if !ok {
			return fmt.Errorf("mountinfo line %q", l)
		}
		return os.WriteFile("/sys/fs/fuse/connections/"+minor+"/abort", []byte("1"), 0)
	}
	return fmt.Errorf("%s is not mounted", mnt)
}

// follow copies what is appended to the file at path, from off, into w
// until exited is closed, and then the rest.
func follow(path string, off int64, w io.Writer, exited <-chan struct{}) {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(w, "integration: follow %s: %v\n", path, err)
		<-exited
		return
	}
	defer f.Close()
	f.Seek(off, io.SeekStart)
	for {
		select {
		case <-exited:
			io.Copy(w, f)
			return
		default:
		}
		if n, _ := io.Copy(w, f); n == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (d *daemon) exitError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.exitErr
}

func (d *daemon) running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the daemon to exit; it returns the exit
// code.
func (d *daemon) stop(t *testing.T) int {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM jobfs: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(stopTimeout):
		d.kill(t)
		t.Fatalf("jobfs did not exit within %v of SIGTERM:\n%s", stopTimeout, d.out)
	}
	d.stoppedWithTerm = true
	return exitCode(d.exitError())
}

// kill9 kills the daemon with SIGKILL, leaving its mount stale.
func (d *daemon) kill9(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill -9 jobfs: %v", err)
	}
	d.kill(t)
}

// restart starts the daemon again on the same folders; the previous one
// must have ended (stop or kill9).
func (d *daemon) restart(t *testing.T) {
	t.Helper()
	if d.running() {
		t.Fatal("restart: the daemon is still running")
	}
	d.start(t)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// cleanup stops the daemon whatever state the test left it in, removes its
// mount, kills what it left behind and reports it.
func (d *daemon) cleanup() {
	t := d.t
	if d.running() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
			d.stoppedWithTerm = true
		case <-time.After(stopTimeout):
			t.Errorf("jobfs did not exit within %v of SIGTERM; killed", stopTimeout)
			d.kill(t)
		}
	}
	if d.mounted() {
		if d.stoppedWithTerm {
			t.Errorf("%s still mounted after jobfs exited on SIGTERM", d.mnt)
		}
		if out, err := exec.Command("umount", "-l", d.mountPath()).CombinedOutput(); err != nil {
			t.Errorf("umount -l %s: %v: %s", d.mnt, err, out)
		}
	}
	if left := d.killLeftovers(); len(left) > 0 {
		t.Errorf("processes left behind by jobfs (killed now):\n%s", strings.Join(left, "\n"))
	}
	if bytes.Contains(d.out.Bytes(), []byte("WARNING: DATA RACE")) {
		t.Errorf("the daemon reported a data race")
	}
	if t.Failed() {
		t.Logf("jobfs output:\n%s", d.out)
	}
}

// mountPath is the daemon's mountpoint as mountinfo names it: mnt, or
// the folder it links to (daemonOpts.linkedMnt).
func (d *daemon) mountPath() string {
	if d.mountedAt != "" {
		return d.mountedAt
	}
	return d.mnt
}

// mounted reports whether something is mounted on the daemon's mountpoint.
func (d *daemon) mounted() bool {
	at := d.mountPath()
	for _, p := range mountsUnder(at) {
		if p == at {
			return true
		}
	}
	return false
}

// mountsUnder lists the mountpoints at or below dir, from mountinfo.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		p := unescapeMountinfo(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// leftovers lists the live processes of this daemon's binary (step inits,
// a daemon that did not exit) and the processes in the cgroups of its jobs
// (jobfs/<job id>/...), with their command lines.
func (d *daemon) leftovers() map[int]string {
	jobIDs, _ := os.ReadDir(filepath.Join(d.state, "jobs"))
	procs, _ := filepath.Glob("/proc/[0-9]*")
	left := map[int]string{}
	for _, p := range procs {
		var pid int
		fmt.Sscanf(filepath.Base(p), "%d", &pid)
		if pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(p + "/cmdline")
		if err != nil || len(cmdline) == 0 { // gone, or a zombie
			continue
		}
		exe, _ := os.Readlink(p + "/exe")
		cg, _ := os.ReadFile(p + "/cgroup")
		if exe == d.bin || exe == filepath.Join(d.dir, "jobfs-init") || exe == filepath.Join(d.dir, "jobfs-shim") || inJobCgroup(string(cg), jobIDs) {
			left[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return left
}

func inJobCgroup(cgroups string, jobIDs []os.DirEntry) bool {
	for _, id := range jobIDs {
		if cgroupHasJob(cgroups, id.Name()) {
			return true
		}
	}
	return false
}

// cgroupHasJob reports whether a /proc/<pid>/cgroup text shows a cgroup of
// job id: jobfs/<state folder instance>/<id>/..., or jobfs/<id>/... as an
// older jobfs named them.
func cgroupHasJob(cgroups, id string) bool {
	for _, line := range strings.Split(cgroups, "\n") {
		_, rest, ok := strings.Cut(line, "/jobfs/")
		if !ok {
			continue
		}
		parts := strings.Split(rest, "/")
		if parts[0] == id || len(parts) > 1 && parts[1] == id {
			return true
		}
	}
	return false
}

// killLeftovers waits a little for the daemon's processes to go (a killed
// process is reaped asynchronously), then SIGKILLs and reports the rest.
func (d *daemon) killLeftovers() []string {
	var left map[int]string
	if eventually(5*time.Second, func() bool { left = d.leftovers(); return len(left) == 0 }) {
		return nil
	}
	var out []string
	for pid, cmd := range left {
		syscall.Kill(pid, syscall.SIGKILL)
		out = append(out, fmt.Sprintf("  %d %s", pid, cmd))
	}
	return out
}

// readyWriter collects one daemon process's output and closes ready at
// the first "ready:".
type readyWriter struct {
	out   *syncBuffer
	mu    sync.Mutex
	seen  []byte
	ready chan struct{}
	once  sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.out.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) < 1<<20 { // a stall's goroutine stacks (stalled) included
		w.seen = append(w.seen, p...)
	}
	if bytes.Contains(w.seen, []byte("ready:")) {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

// stalled reports whether the daemon said it stalled at start (the error
// of fs.awaitAnswer) in go-fuse's start-up poll of its own mount.
func (w *readyWriter) stalled() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Contains(w.seen, []byte("did not answer its first requests")) && bytes.Contains(w.seen, []byte("fuse.pollHack"))
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *syncBuffer) String() string { return string(b.Bytes()) }

var _ io.Writer = (*syncBuffer)(nil)
