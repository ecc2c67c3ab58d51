// Package stepinit is a step's init: the first process of an isolated
// step. The daemon starts it (the small jobfs-init binary, or jobfs itself
// re-executed with Arg) with a Spec on fd 3; it joins and checks the step's
// cgroup, builds its private root, drops what the step must not hold and
// starts the step's program, then reaps. It imports nothing heavy: every
// step pays for its start-up.
package stepinit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"golang.org/x/sys/unix"
)

// Arg is argv[1] of the step init when the daemon re-executes its own
// binary as one (see exec.MaybeInit).
const Arg = "__jobfs_step_init"

// Protocol numbers the shape of Spec: a jobfs-init from another build is
// refused with a reason rather than misreading it. Change it with Spec.
const Protocol = 7

// Spec is what the daemon tells the step init, as JSON on fd 3.
type Spec struct {
	Protocol int               // = Protocol
	Join     []string          // v1: cgroup.procs files to write "0" to
	Verify   map[string]string // controller -> path /proc/self/cgroup must show
	Root     bool              // build a private root with /input /output /app
	// Unshare: the init was started ahead of its step, without a mount
	// namespace (a copy of the host's mounts held while it waits would keep
	// every file system mounted then busy, the daemon's own FUSE mount
	// too): it makes its own, on its locked thread, before the root.
	Unshare  bool
	Input    string
	Output   string
	App      string
	UID, GID uint32
	Groups   []uint32
	Path     string // the step's program, as seen inside
	Args     []string
	Env      []string
	Dir      string
	// NotBefore, when set, is when the step's program may begin: the init
	// sets everything up, then holds the exec until then (a scheduled
	// run's tick), at most MaxHold.
	NotBefore time.Time `json:",omitzero"`
	// AwaitCgroup: the init gets its step before the step's cgroup is made
	// (its shim makes it meanwhile). It mounts the step's root, then reads
	// a CgroupReady from the spec pipe, and only then joins Join and
	// pivots into the root (one that built its root ahead finishes it):
	// the two setups overlap, and nothing of the step runs before it is in
	// its cgroup.
	AwaitCgroup bool `json:",omitempty"`
}

// CgroupReady follows a Spec with AwaitCgroup on the spec pipe.
type CgroupReady struct {
	Abort string // why the cgroup could not be made: the init fails with it
}

// RootAheadArg, as argv[2] of an init started ahead of its step, has it
// build the step's root while it waits (prebuildRoot). Its spec then comes
// on a unix socket, after one byte that carries the mounts of the step's
// folders (SCM_RIGHTS, AheadFolders' order); it joins the step's cgroup
// through the cgroup hierarchies named after it (argv[3:]), opened before
// it left the host's mounts (cgroupRoots).
const RootAheadArg = "root-ahead"

// recvMounts reads the byte that hands an init started ahead its step's
// folders (RootAheadArg) from the socket fd.
func recvMounts(fd int) ([]int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if n != 1 {
		return nil, errors.New("its shim ended before handing a step over")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return nil, err
		}
		fds = append(fds, got...)
	}
	if len(fds) != int(buf[0]) {
		return nil, fmt.Errorf("got %d of the %d mounts it was sent", len(fds), buf[0])
	}
	return fds, nil
}

// The init reports on fd 4: "ok\n" once the step's program was started, or
// "error: <reason>\n" when isolation could not be set up (then the step
// never ran: the run fails with that reason); then "exit <code>\n" once
// the step ended (tellExit). One started with RootAheadArg first says
// "ahead <protocol>\n" once it built the step's root.
//
// No Go stack trace reaches the run log: until "ok" the init's own stderr
// is the status pipe, so a fatal runtime error reaches the daemon as the
// reason of the failed start (its first line); after it, stderr is
// /dev/null. A panic of the init is caught and becomes one line
// "jobfs-init: panic: ...". The step's stdout and stderr are the run log.
func Main() int {
	// Only this thread joins the step's v1 cgroups (joinThread): every
	// other thread of the runtime is made by the template thread that
	// LockOSThread starts here, outside them, so the init counts as one
	// process in the step's pids limit, whatever the runtime does.
	runtime.LockOSThread()
	status := os.NewFile(4, "status")
	logw, err := stderrToStatus()
	if err != nil {
		say(status, "error: jobfs-init: set up its stderr: %v\n", err)
		return 125
	}
	st := &initState{status: status, log: logw}
	defer st.recoverPanic()
	return st.run()
}

// initState is what Main's phases share: where to report.
type initState struct {
	status  *os.File // fd 4: "ok" once the step started, its exit code once it ended
	log     *os.File // the run log (the init's stderr as started)
	started bool     // "ok" was sent
}

// stderrToStatus keeps the run log on a new descriptor and points fd 2 at
// the status pipe, so that what the runtime prints when it dies before the
// step starts is read by the daemon, not appended to the run log.
func stderrToStatus() (*os.File, error) {
	fd, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 5)
	if err != nil {
		return nil, err
	}
	if err := unix.Dup3(4, 2, 0); err != nil {
		_ = unix.Close(fd) // a copy of the log: nothing buffered
		return nil, err
	}
	// The daemon reads one line, then waits for the init to exit: a dying
	// runtime's report longer than the pipe must not block that exit.
	// (The init's own lines are short and the pipe empty: they never fail.)
	if err := unix.SetNonblock(2, true); err != nil {
		_ = unix.Close(fd) // a copy of the log: nothing buffered
		return nil, err
	}
	return os.NewFile(uintptr(fd), "log"), nil
}

// stderrToNull points fd 2 at /dev/null once the status pipe is closed.
func stderrToNull() {
	fd, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return // fd 2 stays on the closed pipe's write end: writes fail, nothing is shown
	}
	_ = unix.Dup3(fd, 2, 0) // best effort, as above
	_ = unix.Close(fd)      // /dev/null: nothing to flush
}

// recoverPanic turns a panic of the init into one line: the failed
// start's reason before the step started, a run log line after.
func (st *initState) recoverPanic() {
	r := recover()
	if r == nil {
		return
	}
	if !st.started {
		say(st.status, "error: jobfs-init: panic: %v\n", r)
	} else {
		say(st.log, "jobfs-init: panic: %v\n", r)
		_ = syscall.Kill(-1, syscall.SIGKILL) // as PID 1 of the step's namespace: its processes end with it
	}
	os.Exit(125)
}

func (st *initState) fail(format string, args ...any) int {
	say(st.status, "error: "+format+"\n", args...)
	return 125
}

// say writes one line to the status pipe or the run log: the init has no
// other place to report a failed write to (the daemon reads a missing
// status line as a failed start).
func say(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

func (st *initState) run() int {
	// Signals for the step reach it through its cgroup; the init only reaps.
	// One that comes while the step waits for its time ends it unstarted.
	// Caught before the spec is read: the first Notify starts the runtime's
	// signal goroutines, each a hand-off between OS threads for an init
	// locked to its thread (0.4-0.75 ms of a trigger's path on a 2-core VM,
	// traced), which an init started ahead does while it waits.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	ahead := len(os.Args) > 2 && os.Args[2] == RootAheadArg
	var cgroups cgroupRoots // an init started ahead: the cgroup mounts it joins through
	defer func() { cgroups.close() }()
	if ahead {
		var err error
		if cgroups, err = openCgroupRoots(os.Args[3:]); err != nil {
			return st.fail("%v", err)
		}
		if err := prebuildRoot(); err != nil {
			return st.fail("%v", err)
		}
		say(st.status, "ahead %d\n", Protocol)
	}
	warmDecoder()
	var mounts []int // a root built ahead: the step's folders, as mounts its shim made
	if ahead {
		m, err := recvMounts(3)
		if err != nil {
			return st.fail("read the step's folders: %v", err)
		}
		mounts = m
	}
	var spec Spec
	dec := json.NewDecoder(os.NewFile(3, "spec"))
	if err := dec.Decode(&spec); err != nil {
		return st.fail("read spec: %v", err)
	}
	select {
	case <-stop: // came while it waited for its step (started ahead): not the step's
	default: // (one the runtime still forwards is the step's: the same moment to its sender)
	}
	if spec.Protocol != Protocol {
		return st.fail("the step init %s is from another build of jobfs (protocol %d, want %d): rebuild both (make build)", os.Args[0], Protocol, spec.Protocol)
	}
	if ahead && !spec.Root {
		return st.fail("jobfs-init: started ahead with a root for a step without one")
	}
	mountStep := func() error { return mountRoot(spec) }
	if ahead {
		mountStep = func() error {
			err := bindAhead(spec, mounts)
			for _, fd := range mounts {
				_ = unix.Close(fd) // moved into the root (or not): the step's root holds them now
			}
			return err
		}
	}
	mounted := false // the step's root is mounted, not yet pivoted into
	var ready CgroupReady
	if spec.AwaitCgroup {
		if spec.Root {
			if err := mountStep(); err != nil {
				return st.fail("%v", err)
			}
			mounted = true
		}
		if err := dec.Decode(&ready); err != nil {
			return st.fail("read whether the step's cgroup is ready (its shim ended?): %v", err)
		}
		if ready.Abort != "" {
			return st.fail("%s", ready.Abort)
		}
	}
	join := joinThread
	if ahead {
		join = cgroups.join
	}
	for _, f := range spec.Join {
		if err := join(f); err != nil {
			return st.fail("join cgroup %s: %v", filepath.Dir(f), err)
		}
	}
	cgroups.close() // joined: the step gets none of them
	if err := verifyCgroup(spec.Verify); err != nil {
		return st.fail("%v", err)
	}
	if spec.Root {
		if !mounted {
			if err := mountStep(); err != nil {
				return st.fail("%v", err)
			}
		}
		finish := func() error { return pivot(rootDir) }
		if ahead {
			finish = finishRoot
		}
		if err := finish(); err != nil {
			return st.fail("build the step's root: %v", err)
		}
		_ = unix.Sethostname([]byte("jobfs")) // cosmetic: the step runs the same under the host's name
		if err := upLoopback(); err != nil {
			return st.fail("bring up lo: %v", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return st.fail("no_new_privs: %v", err)
	}
	// The step must not inherit the spec and status pipes, nor any other
	// descriptor the daemon leaked to the init.
	if err := closeOnExecFrom(3); err != nil {
		return st.fail("close inherited descriptors: %v", err)
	}
	// The bounding set is per thread: it is dropped on the thread that
	// forks, locked since Main began.
	if os.Geteuid() == 0 {
		if err := dropBoundingCaps(); err != nil {
			return st.fail("drop capabilities: %v", err)
		}
	}
	if !holdUntil(spec.NotBefore, stop) {
		return st.fail("stopped before its start time %s", spec.NotBefore.UTC().Format(time.RFC3339Nano))
	}
	if err := clearAmbientCaps(); err != nil {
		return st.fail("drop capabilities: %v", err)
	}
	cmd, err := StartRetryingBusy(func() *osexec.Cmd { return stepCmd(spec, st.log) })
	if err != nil {
		return st.fail("%v", StartError(spec.Path, err))
	}
	say(st.status, "ok\n")
	st.started = true
	stderrToNull()
	code := reap(cmd.Process.Pid, spec.Root, st.log, stop)
	st.tellExit(code)
	return code
}

// tellExit tells the shim, on the status pipe, the step's exit code once
// reap is done (as PID 1, every process of the step is gone), after the
// init let go of the log pipe's write end: the shim records the step's end
// while the init still exits (its namespaces' teardown, 0.5-0.8 ms on a
// 2-core VM), and finds the log complete. The init's exit status says the
// same, for a shim that does not read the line.
func (st *initState) tellExit(code int) {
	if fd, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0); err == nil {
		_ = unix.Dup3(fd, 1, 0) // the step's stdout was the log pipe; best effort, as stderrToNull
		_ = unix.Close(fd)      // /dev/null: nothing to flush
	}
	_ = st.log.Close() // the run log's pipe: nothing buffered
	say(st.status, "exit %d\n", code&0xff)
	_ = st.status.Close() // a pipe: nothing buffered
}

// busyFor is how long a step's program found "text file busy" is tried
// again (see StartRetryingBusy).
const busyFor = 500 * time.Millisecond

// StartRetryingBusy starts the command newCmd makes. "text file busy"
// (ETXTBSY: the program's file is open for writing somewhere) is tried
// again, with a new command, for busyFor, waiting from 1 ms doubling: a
// process forked by the daemon while it wrote the file (a run's script, an
// image's export) holds a copy of that descriptor until its own exec
// (golang/go#22315), for milliseconds on a loaded machine: two runs in
// 36,000 of four writers failed so before. Every start of a step's program
// comes here, whichever file was written by whom. A file someone keeps
// writing still fails, as before.
func StartRetryingBusy(newCmd func() *osexec.Cmd) (*osexec.Cmd, error) {
	deadline := time.Now().Add(busyFor)
	for wait := time.Millisecond; ; wait *= 2 {
		cmd := newCmd()
		err := cmd.Start()
		if err == nil || !errors.Is(err, syscall.ETXTBSY) || time.Now().After(deadline) {
			return cmd, err
		}
		time.Sleep(wait)
	}
}

// stepCmd is the step's program as the init starts it: as the step's
// user, its stdout the run log's pipe, its stderr the run log.
func stepCmd(spec Spec, log *os.File) *osexec.Cmd {
	cmd := &osexec.Cmd{
		Path: spec.Path, Args: append([]string{spec.Path}, spec.Args...),
		Env: spec.Env, Dir: spec.Dir,
		Stdin: nil, Stdout: os.Stdout, Stderr: log,
		SysProcAttr: &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: spec.UID, Gid: spec.GID, NoSetGroups: spec.UID == 0}},
	}
	if spec.UID != 0 {
		cmd.SysProcAttr.Credential.Groups = append([]uint32{spec.GID}, spec.Groups...)
	}
	if asStepUser(spec) { // a normal user's daemon: nothing to change, and setgroups is not allowed
		cmd.SysProcAttr.Credential = nil
	}
	return cmd
}

// mountRoot makes the step's mount namespace where the init was started
// without one (Spec.Unshare) and mounts its root at rootDir; pivot then
// makes it the root.
func mountRoot(spec Spec) error {
	if spec.Unshare {
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("make the step's mount namespace: %w", err)
		}
	}
	if err := buildRoot(spec); err != nil {
		return fmt.Errorf("build the step's root: %w", err)
	}
	return nil
}

// warmDecoder decodes a Spec and a CgroupReady once before the real ones
// are read. A process's first decode of a type builds encoding/json's
// cache of its fields (0.1-0.35 ms of a fresh init on a 2-core VM, traced):
// an init started ahead does that while it waits, off the trigger's path;
// one started for its step pays it here instead of at its first decode.
func warmDecoder() {
	if b, err := json.Marshal(Spec{Join: []string{""}, Verify: map[string]string{"": ""}, Groups: []uint32{0},
		Args: []string{""}, Env: []string{""}, NotBefore: time.Unix(1, 0)}); err == nil {
		_ = json.Unmarshal(b, new(Spec)) // what it just encoded: nothing to report
	}
	_ = json.Unmarshal([]byte(`{"Abort":""}`), new(CgroupReady)) // a constant that decodes
}

// MaxHold bounds how long a step is held for its NotBefore, whatever the
// clocks say: a scheduled run is set up a fraction of a second ahead.
const MaxHold = 5 * time.Second

// holdWait is how long to hold for t: none when t is zero or past.
func holdWait(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return min(max(time.Until(t), 0), MaxHold) // t has no monotonic reading: the wall's
}

// Hold sleeps until t (see Spec.NotBefore), for a step started without an
// init.
func Hold(t time.Time) {
	if d := holdWait(t); d > 0 {
		time.Sleep(d)
	}
}

// holdUntil is Hold, ended early by a signal on stop: false then.
func holdUntil(t time.Time, stop <-chan os.Signal) bool {
	d := holdWait(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-stop:
		return false
	}
}

// joinThread moves the calling thread into the cgroup of a v1 hierarchy
// (its tasks file; cgroup.procs would move every thread of the init), or,
// where the folder has no tasks file, the whole process.
func joinThread(procs string) error {
	return joinVia(func(name string) (int, error) {
		return unix.Open(name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	}, procs)
}

// verifyCgroup checks /proc/self/cgroup: the step must be in its cgroup
// before any of its code runs.
func verifyCgroup(want map[string]string) error {
	if len(want) == 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/thread-self/cgroup") // this thread's: only it joined
	if err != nil {
		return err
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			got[c] = parts[2]
		}
	}
	for c, p := range want {
		if got[c] != p {
			return fmt.Errorf("not in its cgroup: %s is %q, want %q", nameOr(c, "unified"), got[c], p)
		}
	}
	return nil
}

func nameOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// reap waits for the step's main process, reaping every orphan meanwhile
// (as PID 1 of its pid namespace it is their parent), then kills what is
// left, saying so in the run log, and returns the main process's exit
// code (128+N for signal N). A process that is ending (a foreground child
// a stop's SIGTERM ends with the step) is not named: it was not left
// running; one that ignores the stop's SIGTERM is. When the main process
// ended by a signal, or the init got one (a stop sends its signal to them
// all, the init included, in turn), the others are given up to
// signalledGrace to end by theirs before they are named.
func reap(main int, pid1 bool, log *os.File, stop <-chan os.Signal) int {
	code := -1
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil { // ECHILD: nothing left
			return code
		}
		if pid != main {
			continue
		}
		code = ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		if !pid1 {
			return code
		}
		if syscall.Kill(-1, 0) == nil { // something is left: name it before it goes
			left, n := leftProcesses()
			if n > 0 && (ws.Signaled() || len(stop) > 0) { // only ever a wait: a step signalling its init costs it 50 ms
				for deadline := time.Now().Add(signalledGrace); n > 0 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
					left, n = leftProcesses()
				}
			}
			_ = syscall.Kill(-1, syscall.SIGKILL) // ESRCH: ended meanwhile
			if n > 0 {
				say(log, "jobfs: the step ended; %d process(es) it left running were killed: %s\n", n, strings.Join(left, ", "))
			}
		}
	}
}

// signalledGrace is how long the processes of a step whose main process
// a signal ended may take to end by the same signal (a stop sends it to
// them all at once) before the init names them as left running.
const signalledGrace = 50 * time.Millisecond

// printable is a process name as a log line may hold it: a step chooses
// its processes' names, and a control or format character becomes ?.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// leftProcesses counts the processes of the step's pid namespace other
// than the init (its /proc is the namespace's) that still run and names
// them: "sleep (pid 7)", at most ten, then how many more. One that has
// ended and waits to be reaped (a zombie: a foreground child the step's
// stop ended with it) is not counted.
func leftProcesses() (names []string, n int) {
	ents, _ := os.ReadDir("/proc") // unreadable: nothing named
	var out []string
	more := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 || ended(e.Name()) {
			continue
		}
		n++
		if len(out) == 10 {
			more++
			continue
		}
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm") // gone meanwhile: no name
		out = append(out, fmt.Sprintf("%s (pid %d)", printable(nameOr(strings.TrimSpace(string(comm)), "?")), pid))
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("%d more", more))
	}
	return out, n
}

// ended reports whether process pid (of the init's /proc) has ended or is
// ending: a zombie (Z) or dead (X), or exiting (PF_EXITING in its flags),
// from its stat, or with SIGKILL pending in its status (the kernel adds it
// the moment a signal that ends the process is sent, as the stop's SIGTERM
// to a process that does not catch it). Gone meanwhile counts as ended.
func ended(pid string) bool {
	if st, err := os.ReadFile("/proc/" + pid + "/status"); err == nil && killPending(st) {
		return true
	}
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')') // the name may hold spaces and parentheses
	if i < 0 {
		return false
	}
	// After the name: state ppid pgrp session tty_nr tpgid flags ...
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return false
	}
	if f[0] == "Z" || f[0] == "X" {
		return true
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfExiting != 0
}

// pfExiting is the kernel's PF_EXITING task flag: the task is in exit.
const pfExiting = 0x4

// killPending reports whether a /proc/<pid>/status shows SIGKILL pending,
// for its thread (SigPnd) or its whole process (ShdPnd).
func killPending(status []byte) bool {
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "SigPnd" && k != "ShdPnd") {
			continue
		}
		if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&(1<<(unix.SIGKILL-1)) != 0 {
			return true
		}
	}
	return false
}

// closeOnExecFrom marks every open descriptor from fd up close-on-exec.
func closeOnExecFrom(from int) error {
	if err := unix.CloseRange(uint(from), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	ents, err := os.ReadDir("/proc/self/fd") // kernels before 5.11
	if err != nil {
		return err
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= from {
			syscall.CloseOnExec(fd)
		}
	}
	return nil
}

// stepCaps are the capabilities a step started as root keeps (Docker's
// defaults less the ones that reach beyond the step: no mount, no raw
// sockets, no mknod, no chroot). Without CAP_SYS_ADMIN a root step cannot
// remount its read-only /usr, nor undo any of its isolation.
var stepCaps = map[uintptr]bool{
	unix.CAP_CHOWN: true, unix.CAP_DAC_OVERRIDE: true, unix.CAP_FOWNER: true, unix.CAP_FSETID: true,
	unix.CAP_KILL: true, unix.CAP_SETGID: true, unix.CAP_SETUID: true, unix.CAP_NET_BIND_SERVICE: true,
}

// dropBoundingCaps removes every other capability from the calling thread's
// bounding set: the step's program, executed from it, can never hold them.
// The init keeps its own (it still has to set the step's user).
func dropBoundingCaps() error {
	last := uintptr(unix.CAP_LAST_CAP)
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = uintptr(n)
		}
	}
	for c := uintptr(0); c <= last; c++ {
		if stepCaps[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("capability %d: %w", c, err)
		}
	}
	return nil
}

// StartError explains why a step's program could not be started.
func StartError(path string, err error) error {
	if errors.Is(err, syscall.ENOEXEC) {
		return fmt.Errorf("cannot execute %s: not a program and no #! line", path)
	}
	return fmt.Errorf("cannot start %s: %w", path, errors.Unwrap(err))
}
