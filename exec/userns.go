package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// userNSCaps are what the init of a step in a user namespace holds there
// (raised as ambient capabilities, so they survive its exec as a normal
// uid): mount and pivot_root for the private root, sethostname, and
// bringing up lo of a new network namespace. The init clears them before it
// starts the step, which then holds none.
var userNSCaps = []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN}

// userNSAttr makes attr clone the init into a new user namespace that maps
// only the daemon's own uid and gid onto themselves: no newuidmap, no
// subordinate ids; setgroups is denied in it (Go writes "deny" first, as an
// unprivileged gid_map needs).
func userNSAttr(attr *syscall.SysProcAttr) {
	attr.Cloneflags |= syscall.CLONE_NEWUSER
	uid, gid := os.Geteuid(), os.Getegid()
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
	attr.GidMappingsEnableSetgroups = false
	attr.AmbientCaps = userNSCaps
}

// ProbeUserNS starts one step the way a step of a normal user's daemon is
// started (user, mount, pid, ipc, uts and network namespaces, the private
// root, lo brought up) and returns why that failed, in words a person can
// act on; nil means steps can be isolated. init is the step init; the
// probe's folders are made in a temporary folder below parent, which should
// be where the steps' folders will be (their file system's mount flags
// count).
func ProbeUserNS(init, parent string) error {
	dir, err := os.MkdirTemp(parent, ".jobfs-probe-")
	if err != nil {
		return fmt.Errorf("make a folder for the probe: %w", err)
	}
	// A leftover probe folder is harmless; the probe's answer is what counts.
	defer func() { _ = os.RemoveAll(dir) }()
	app, in, out := filepath.Join(dir, "app"), filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, d := range []string{app, in, out} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	prog := filepath.Join(app, "probe")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 0\n"), 0o700); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := Run(ctx, Spec{
		Path: prog, LogPath: filepath.Join(dir, "log"), Grace: time.Second,
		Env: []string{"PATH=/usr/bin:/bin"},
		Isolation: &Isolation{
			Init: init, Namespaces: true, UserNS: true, NoNetwork: true,
			Input: in, Output: out, App: app,
			UID: uint32(os.Geteuid()), GID: uint32(os.Getegid()),
		},
	})
	if res.Outcome != NotStarted && res.ExitCode == 0 {
		return nil
	}
	return userNSReason(res)
}

// userNSReason explains a failed probe, naming the setting that refuses
// user namespaces where one of the known ones does.
func userNSReason(res Result) error {
	why := "the probe step failed"
	if res.Err != nil {
		why = res.Err.Error()
	} else if res.Outcome != NotStarted {
		why = fmt.Sprintf("the probe step exited %d", res.ExitCode)
	}
	return errors.New(why + userNSHint())
}

// userNSHint names what on this host refuses unprivileged user namespaces.
func userNSHint() string {
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return " (sysctl kernel.unprivileged_userns_clone is 0: set it to 1 to allow them)"
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return " (sysctl user.max_user_namespaces is 0: raise it to allow them)"
	}
	if b, err := os.ReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); err == nil && strings.TrimSpace(string(b)) == "1" {
		return " (AppArmor restricts unprivileged user namespaces, kernel.apparmor_restrict_unprivileged_userns=1: give jobfs-init an AppArmor profile with 'userns,' or set the sysctl to 0)"
	}
	return ""
}
