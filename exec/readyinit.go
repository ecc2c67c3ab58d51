package exec

import (
	"os"
	osexec "os/exec"
	"syscall"
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
}

// initAttr is the process attributes of an init for these namespaces. An
// init started ahead gets no mount namespace (mountNS false): it makes it
// once it has its step (stepinit.Spec.Unshare), so that while it waits it
// holds no copy of the host's mounts, which would keep them busy.
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

// canStartAhead says whether an init started outside the step's cgroup can
// move itself into it: always with v1 (the init joins by writing tasks
// files) and without cgroups; with v2 only as root, since a delegated
// user may not move a process out of the shim's cgroup (the cgroup.procs
// of their common ancestor is not the user's), so v2 inits are cloned
// straight into the cgroup instead.
func canStartAhead(cg Cgroups) bool {
	return cg == nil || cg.Version() == 1 || os.Geteuid() == 0
}

// startReadyInit starts an init for k that waits for its spec.
func startReadyInit(k InitAhead) (*readyInit, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		closeUnused(outR, outW)
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		closeUnused(outR, outW, specR, specW)
		return nil, err
	}
	r := &readyInit{key: k, spec: specW, status: statusR, outR: outR, outW: outW}
	r.cmd = initCmd(k.Init, outW, specR, statusW, initAttr(k, false))
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

// discard ends an init that was not used: at the end of its spec pipe it
// exits; it is killed too, in case it is slow to see that, and waited for.
func (r *readyInit) discard() {
	closeUnused(r.spec, r.status, r.outR, r.outW)
	_ = r.cmd.Process.Kill() // it holds nothing: no step was handed over
	_ = r.cmd.Wait()         // its exit says nothing of use
}
