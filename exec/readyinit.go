package exec

import (
	"bytes"
	"fmt"
	"os"
	osexec "os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/jobfs/jobfs/exec/stepinit"
)

// InitAhead says how the steps of a daemon's pooled shims are isolated, so
// that an idle shim can start the step's init before the step is known:
// the init's exec, its Go runtime's start and the namespaces' clone (about
// 3 ms of a 2-core VM's time) then happen while nothing waits. The init
// reads its spec only once it is handed the step, then joins the step's
// cgroups and builds its root as always: no user code runs before that.
type InitAhead struct {
	Init       string // the step init
	Namespaces bool
	UserNS     bool
	NoNetwork  bool
}

// readyInit is an init started ahead: waiting for its spec on spec, telling
// its start on status, its stdout and stderr the write end of out.
type readyInit struct {
	key          InitAhead
	cmd          *osexec.Cmd
	spec, status *os.File
	outR, outW   *os.File
	// rootAhead: it builds the step's root while it waits (stepinit's
	// RootAheadArg); spec is then a unix socket.
	rootAhead bool
}

// initAttr is the process attributes of an init for these namespaces. An
// init started ahead gets no mount namespace (mountNS false): a copy of the
// host's mounts held while it waits would keep them busy. It makes its own
// once it has its step (stepinit.Spec.Unshare), or, building the step's
// root ahead (rootAhead), makes it, builds the root and lets go of the
// host's at once.
func initAttr(k InitAhead, mountNS bool) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if k.Namespaces {
		attr.Cloneflags = syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
		if mountNS {
			attr.Cloneflags |= syscall.CLONE_NEWNS
		}
		if k.NoNetwork {
			attr.Cloneflags |= syscall.CLONE_NEWNET
		}
		if k.UserNS {
			userNSAttr(attr)
		}
	}
	return attr
}

// aheadKey is the part of iso an init started ahead must match.
func aheadKey(iso *Isolation) InitAhead {
	return InitAhead{Init: iso.Init, Namespaces: iso.Namespaces, UserNS: iso.Namespaces && iso.UserNS, NoNetwork: iso.Namespaces && iso.NoNetwork}
}

// canStartAhead says whether an init started outside the step's cgroup
// can move itself into it at no cost: always with v1 (the init's thread
// joins by writing "0" to tasks files, which the kernel, 6.18 here, does
// without its threadgroup lock) and without cgroups. On v2 a process joins through
// cgroup.procs, for which the kernel takes that lock for writing and waits
// out an RCU grace period (6-8 ms on a 2-core VM, more than the init's
// start), unless the hierarchy is mounted with favordynmods; and a
// delegated user may not move a process out of the shim's cgroup at all
// (the cgroup.procs of their common ancestor is not the user's). Elsewhere
// inits are cloned straight into the step's cgroup (CLONE_INTO_CGROUP).
func canStartAhead(cg Cgroups) bool {
	return cg == nil || cg.Version() == 1 || (os.Geteuid() == 0 && v2FavorsDynMods())
}

// v2FavorsDynMods says whether the cgroup v2 hierarchy at /sys/fs/cgroup
// is mounted with favordynmods (Linux 6.0+): moving a process is then cheap.
var v2FavorsDynMods = sync.OnceValue(func() bool {
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter("/sys/fs/cgroup"))
	if err != nil || len(mounts) == 0 {
		return false
	}
	top := mounts[len(mounts)-1] // the one seen there, where mounts are stacked
	return top.FSType == "cgroup2" && slices.Contains(strings.Split(top.VFSOptions, ","), "favordynmods")
})

// rootAhead says whether an init started ahead for k builds the step's
// root while it waits: for steps with namespaces, on a root daemon, whose
// shim can make the mounts of the step's folders for it (open_tree needs
// CAP_SYS_ADMIN in its mount namespace).
func rootAhead(k InitAhead) bool {
	return k.Namespaces && !k.UserNS && os.Geteuid() == 0
}

// startReadyInit starts an init for k that waits for its spec; one that
// builds its root ahead is given the folders of cg's hierarchies, which it
// joins the step's cgroup through.
func startReadyInit(k InitAhead, cg Cgroups) (*readyInit, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ahead := rootAhead(k)
	specR, specW, err := os.Pipe()
	if ahead { // the spec comes with the mounts of the step's folders
		specR, specW, err = socketPair()
	}
	if err != nil {
		closeUnused(outR, outW)
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		closeUnused(outR, outW, specR, specW)
		return nil, err
	}
	r := &readyInit{key: k, spec: specW, status: statusR, outR: outR, outW: outW, rootAhead: ahead}
	r.cmd = initCmd(k.Init, outW, specR, statusW, initAttr(k, false))
	if ahead {
		r.cmd.Args = append(r.cmd.Args, stepinit.RootAheadArg)
		if cg != nil {
			r.cmd.Args = append(r.cmd.Args, cg.mounts()...)
		}
	}
	err = r.cmd.Start()
	closeUnused(specR, statusW) // the init has its own copies
	if err != nil {
		closeUnused(outR, outW, specW, statusR)
		return nil, err
	}
	return r, nil
}

// initCmd is the command of a step init with its spec and status pipes.
func initCmd(init string, out, specR, statusW *os.File, attr *syscall.SysProcAttr) *osexec.Cmd {
	return &osexec.Cmd{
		Path: init, Args: []string{init, initArg},
		// One OS thread suffices for the init: its threads count in pids.max.
		// GORACE: a -race build (the tests) would sleep 1 s at the init's exit.
		Env:    []string{"GOMAXPROCS=1", "GORACE=atexit_sleep_ms=0"},
		Stdout: out, Stderr: out, ExtraFiles: []*os.File{specR, statusW},
		SysProcAttr: attr,
	}
}

// socketPair is a connected pair of unix stream sockets, as files.
func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "spec"), os.NewFile(uintptr(fds[1]), "spec"), nil
}

// aheadFor bounds the wait for an init that builds its root ahead to have
// built it (a few ms; one of another build never says it).
const aheadFor = 2 * time.Second

// awaitRoot waits, at most aheadFor, for an init that builds its root
// ahead to have built it; an error when it failed or is of another
// protocol (the step then starts an init of its own, which says what is
// wrong).
func (r *readyInit) awaitRoot() error {
	_ = r.status.SetReadDeadline(time.Now().Add(aheadFor)) // a pipe: pollable; without it the wait is unbounded
	defer func() { _ = r.status.SetReadDeadline(time.Time{}) }()
	// The init says nothing more until it has its spec, which is sent
	// after this: a read takes the whole line, never a byte of what comes
	// later (read a byte at a time, the line's 8 reads were 0.13 ms of a
	// trigger, traced). The loop is for a line that comes in pieces.
	var line []byte
	b := make([]byte, 256)
	for len(line) < 256 && !bytes.HasSuffix(line, []byte("\n")) {
		n, err := r.status.Read(b[:256-len(line)])
		line = append(line, b[:max(n, 0)]...)
		if err != nil {
			break
		}
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	if f := strings.Fields(string(line)); len(f) == 2 && f[0] == "ahead" && f[1] == strconv.Itoa(stepinit.Protocol) {
		return nil
	}
	return fmt.Errorf("the step init started ahead did not build the step's root: %q", line)
}

// abandon ends an init that could not be used, keeping its log pipe for
// the init the step starts instead.
func (r *readyInit) abandon() {
	closeUnused(r.spec, r.status)
	_ = r.cmd.Process.Kill() // no step was handed over
	_ = r.cmd.Wait()         // its exit says nothing of use
}

// discard ends an init that was not used: at the end of its spec pipe it
// exits; it is killed too, in case it is slow to see that, and waited for.
func (r *readyInit) discard() {
	closeUnused(r.spec, r.status, r.outR, r.outW)
	_ = r.cmd.Process.Kill() // it holds nothing: no step was handed over
	_ = r.cmd.Wait()         // its exit says nothing of use
}
