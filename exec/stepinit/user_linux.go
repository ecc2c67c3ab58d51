package stepinit

import (
	"os"

	"golang.org/x/sys/unix"
)

// asStepUser reports whether the init already runs as the step's user and
// group, as under a normal user's daemon (in a user namespace that maps
// only that uid, or without one): then the step is started as it is, since
// setgroups needs CAP_SETGID, which a normal user lacks.
func asStepUser(s Spec) bool {
	return s.UID != 0 && os.Getuid() == int(s.UID) && os.Getgid() == int(s.GID)
}

// clearAmbientCaps drops the ambient capabilities the daemon gave the init
// in a user namespace (mount, hostname, lo), on the thread that starts the
// step: executed as a normal uid, the step then holds no capability.
func clearAmbientCaps() error {
	err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	if err == unix.EINVAL { // before Linux 4.3 there are none
		return nil
	}
	return err
}

// upLoopback brings lo up where it is down: in the new network namespace of
// a step with config/network none, lo is its only interface. On the host's
// network lo is up and nothing is changed.
func upLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(fd) }() // a socket for one ioctl: nothing to flush
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	flags := ifr.Uint16()
	if flags&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(flags | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
