package exec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jobfs/jobfs/exec/beneath"
	"github.com/jobfs/jobfs/exec/stepinit"
)

// Isolation runs a step in a cgroup of its own and, as root, in its own
// mount, pid, ipc and uts namespaces on a private root. The step is started
// through the init (the jobfs binary re-executed, see MaybeInit), which joins
// the cgroup (v1) or is cloned into it (v2), verifies, builds the root and
// only then starts the step's program: no user code runs outside its cgroup.
// (An init started ahead mounts the root while its cgroup is made, and
// joins before it pivots into it.)
type Isolation struct {
	Init       string  // path of the jobfs binary
	Cgroups    Cgroups // nil: no cgroup
	Group      string  // cgroup path, e.g. jobfs/<job>/<run>/<step>
	Limits     Limits
	Namespaces bool // mount, pid, ipc, uts namespaces, private root, /input /output /app
	// UserNS (a normal user's daemon) adds a user namespace that maps only
	// the daemon's uid and gid, so the namespaces need no root.
	UserNS bool
	// NoNetwork adds a network namespace with only lo (config/network none).
	NoNetwork bool
	Input     string // host folders seen as /input, /output and /app
	Output    string
	App       string
	UID, GID  uint32   // the step runs as this user
	Groups    []uint32 // with these supplementary groups
}

// process is a started step.
type process struct {
	cmd   *osexec.Cmd
	pgid  int
	group Group // nil without a cgroup
	// exited gets the step's exit code when the init tells it before its
	// own exit (stepinit's tellExit); nothing when it ends without telling.
	exited chan int
	reaped chan struct{} // closed once the step's init (or process) is waited for
	// pidNS: the init is PID 1 of the step's pid namespace, so that once it
	// told the exit (told), no process of the step is left: only the init,
	// exiting, which a kill of the cgroup would freeze mid-teardown.
	pidNS, told bool
}

// start starts the step's process (through the init when isolated).
func start(s Spec, out *os.File) (*process, error) {
	if s.Isolation == nil {
		stepinit.Hold(s.NotBefore) // no init to hold it: the process starts then
		cmd, err := stepinit.StartRetryingBusy(func() *osexec.Cmd {
			return &osexec.Cmd{
				Path: s.Path, Args: append([]string{s.Path}, s.Args...),
				Env: s.Env, Dir: s.Dir, Stdout: out, Stderr: out,
				SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
			}
		})
		if err != nil {
			return nil, startError(s.Path, err)
		}
		return &process{cmd: cmd, pgid: cmd.Process.Pid, reaped: make(chan struct{})}, nil
	}
	return startIsolated(s, out)
}

func startIsolated(s Spec, out *os.File) (*process, error) {
	iso := s.Isolation
	ready := s.ready
	p := &process{reaped: make(chan struct{}), pidNS: iso.Namespaces}
	var err error
	if ready != nil && ready.rootAhead {
		if failed := ready.awaitRoot(); failed != nil { // not the step's failure: the step starts an init of its own, which says its own
			ready.abandon()
			ready = nil
		}
	}
	// An init started ahead is handed its step first and mounts the step's
	// root while the cgroup is made here; it joins once told the cgroup is
	// ready (stepinit.Spec.AwaitCgroup): 0.3 ms of a trigger on a 2-core VM.
	planned := ready != nil && iso.Cgroups != nil
	if iso.Cgroups != nil && !planned {
		if p.group, err = iso.Cgroups.Create(iso.Group, iso.Limits); err != nil {
			return nil, fmt.Errorf("cannot apply the limits: %w", err)
		}
	}
	spec := initSpec{Protocol: stepinit.Protocol, Root: iso.Namespaces, UID: iso.UID, GID: iso.GID, Groups: iso.Groups, Env: s.Env,
		Path: s.Path, Args: s.Args, Dir: s.Dir, NotBefore: s.NotBefore}
	attr := initAttr(aheadKey(iso), true)
	if iso.Namespaces {
		spec.Unshare = ready != nil
		spec.Input, spec.Output, spec.App = iso.Input, iso.Output, iso.App
		spec.Path, spec.Args, spec.Dir = "/app/"+filepath.Base(s.Path), []string{"/input", "/output"}, "/app"
	}
	if planned { // v1: the init joins by writing the tasks files; v2 (as root): it moves itself
		spec.Join, spec.Verify = iso.Cgroups.plan(iso.Group)
		spec.AwaitCgroup = true
	}
	if p.group != nil {
		spec.Join, spec.Verify = p.group.JoinFiles(), p.group.Paths()
		if len(spec.Join) == 0 { // v2: clone straight into the cgroup
			fd, err := syscall.Open(p.group.Dir(), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
			if err != nil {
				p.finish()
				return nil, fmt.Errorf("open cgroup %s: %w", p.group.Dir(), err)
			}
			defer beneath.CloseFd(fd)
			attr.UseCgroupFD, attr.CgroupFD = true, fd
		}
	}
	if ready != nil {
		p.cmd = ready.cmd
		p.pgid = p.cmd.Process.Pid
		if ready.rootAhead { // it built the step's root: it is handed the step's folders
			if err := sendAheadMounts(ready.spec, spec); err != nil {
				ready.abandon()
				return nil, err
			}
		}
		var makeGroup func() error
		if planned {
			makeGroup = func() error {
				g, err := iso.Cgroups.Create(iso.Group, iso.Limits)
				if err != nil {
					return fmt.Errorf("cannot apply the limits: %w", err)
				}
				p.group = g
				return nil
			}
		}
		if err := p.handOver(ready.spec, ready.status, spec, makeGroup); err != nil {
			return nil, err
		}
		return p, nil
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		p.finish()
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		closeUnused(specR, specW)
		p.finish()
		return nil, err
	}
	p.cmd = initCmd(iso.Init, out, specR, statusW, attr)
	err = p.cmd.Start()
	closeUnused(specR, statusW) // the init has its own copies
	if err != nil {
		closeUnused(specW, statusR)
		p.finish()
		hint := ""
		if iso.UserNS && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOSPC)) {
			hint = userNSHint() // a node of a Slurm site, say, that refuses user namespaces
		}
		return nil, fmt.Errorf("start the step init %s: %w%s", iso.Init, err, hint)
	}
	p.pgid = p.cmd.Process.Pid
	if err := p.handOver(specW, statusR, spec, nil); err != nil {
		return nil, err
	}
	return p, nil
}

// handOver sends the spec to the started init and reads whether it started
// the step; on failure the init is waited for and the cgroup removed.
// makeGroup, for a spec with AwaitCgroup, makes the step's cgroup once the
// init has the spec; the init then learns whether it may join. Once the
// step started, the status pipe is read on for its exit code (exited),
// and closed at its end.
func (p *process) handOver(specW, statusR *os.File, spec initSpec, makeGroup func() error) error {
	enc := json.NewEncoder(specW)
	sendErr := enc.Encode(spec)
	var groupErr error
	if makeGroup != nil {
		groupErr = makeGroup()
		var ready stepinit.CgroupReady
		if groupErr != nil {
			ready.Abort = groupErr.Error()
		}
		if err := enc.Encode(ready); sendErr == nil {
			sendErr = err
		}
	}
	if err := specW.Close(); sendErr == nil {
		sendErr = err
	}
	status := bufio.NewReader(statusR)
	line, _ := status.ReadString('\n')
	if line = strings.TrimSpace(line); line == "ok" {
		p.exited = make(chan int, 1)
		go func() {
			defer closeUnused(statusR)
			line, _ := status.ReadString('\n')
			if n, ok := strings.CutPrefix(strings.TrimSpace(line), "exit "); ok {
				if code, err := strconv.Atoi(n); err == nil {
					p.exited <- code
				}
			}
		}()
		return nil
	}
	closeUnused(statusR)
	_ = p.cmd.Wait() // its end is told by ProcessState below
	p.finish()
	if groupErr != nil {
		return groupErr // the init was told, and ended with it
	}
	if reason, ok := strings.CutPrefix(line, "error: "); ok {
		return errors.New(reason)
	}
	if line != "" { // the init's runtime died: its stderr is the status pipe, line the first of its report
		return fmt.Errorf("the step init ended before starting the step (%s): jobfs-init: %s", p.cmd.ProcessState, line)
	}
	if sendErr != nil {
		return fmt.Errorf("the step init ended before starting the step (%s): send the spec: %w", p.cmd.ProcessState, sendErr)
	}
	return fmt.Errorf("the step init ended before starting the step (%s)", p.cmd.ProcessState)
}

// stop sends SIGTERM to every process of the step, waits up to grace for
// the main process, then kills them all and waits for it. killed is grace
// when it had to: the step's log says so, or its 137 would read as a kill.
func (p *process) stop(grace time.Duration, done <-chan error) (killed time.Duration, err error) {
	if grace <= 0 { // a kill: SIGKILL alone, so the step ends by it (137), not by a SIGTERM it did not trap
		p.killAll()
		return 0, <-done
	}
	p.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return 0, err
	case <-t.C:
		select {
		case err := <-done: // ended as the grace ran out: not killed
			return 0, err
		case code := <-p.exited: // (nil without an init: never) ended; the init exits now
			p.exited <- code // for whoever reads it next (a buffer of one, emptied above)
			return 0, <-done
		default:
		}
		p.killAll()
		return grace, <-done
	}
}

// signal signals the process group and the cgroup. Best effort: ESRCH
// means it ended, and the stop's wait and kill come next.
func (p *process) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.pgid, sig)
	if p.group != nil {
		_ = p.group.Signal(sig)
	}
}

// killAll kills everything of the step: its cgroup (double-forked
// children included) and its process group; nothing once the step's PID 1
// told its end.
func (p *process) killAll() {
	if p.told && p.pidNS {
		return
	}
	if p.group != nil {
		_ = p.group.Kill() // the process group kill follows; finish's Delete waits for the rest
	}
	_ = syscall.Kill(-p.pgid, syscall.SIGKILL) // ESRCH: the group is gone already
}

// finish removes the cgroup and reports whether the OOM killer struck and
// what the step used (read first: the removal loses the counters).
func (p *process) finish() (oom bool, u Usage) {
	oom, u = p.usage()
	if p.group != nil {
		_ = p.group.Delete() // as removeGroup's; its init was waited for, or never started
	}
	return oom, u
}

// usage reports whether the OOM killer struck and what the step used.
func (p *process) usage() (oom bool, u Usage) {
	if p.group == nil {
		return false, Usage{}
	}
	if p.told && p.pidNS { // every process of the step is gone; the init's exit is not the step's
		return p.group.OOMKilled(), p.group.Counters()
	}
	return p.group.OOMKilled(), p.group.Usage()
}

// removeGroup removes the cgroup of a step that wait saw end, once the
// init that told the step's end has left it too.
func (p *process) removeGroup() {
	if p.group != nil {
		select { // Delete would poll for it every 2 ms
		case <-p.reaped:
		case <-time.After(2 * time.Second):
		}
		// What is left is removed with the run's cgroup folder, whose
		// failure the caller (jobs) logs.
		_ = p.group.Delete()
	}
}

// sendAheadMounts hands an init that built the step's root ahead the
// step's folders as mounts (open_tree: a detached copy of each, its own
// mounts below it included, as a recursive bind): one byte on its spec
// socket carries them. The last component of each folder is not followed,
// as a bind by the init would not.
func sendAheadMounts(sock *os.File, spec initSpec) error {
	srcs := map[string]string{"/input": spec.Input, "/output": spec.Output, "/app": spec.App}
	var fds []int
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd) // a detached mount: nothing to flush; the init has its own
		}
	}()
	for _, dst := range stepinit.AheadFolders(spec) {
		src := srcs[dst]
		fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("open %s: %w", src, err)
		}
		fds = append(fds, fd)
		if err := stepinit.CheckStepFolder(fd, src); err != nil {
			return err
		}
		// A copy keeps its source's propagation: one of a shared mount (as
		// systemd makes /) would show the step what the host mounts there
		// later. The init makes it private again once attached (older
		// kernels have no mount_setattr).
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Propagation: unix.MS_PRIVATE}); err != nil && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("make the mount of %s private: %w", src, err)
		}
	}
	return unix.Sendmsg(int(sock.Fd()), []byte{byte(len(fds))}, unix.UnixRights(fds...), nil, 0)
}

// closeUnused closes pipe ends this process no longer uses: nothing
// buffered in them, so a close has nothing to report.
func closeUnused(fs ...*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}
