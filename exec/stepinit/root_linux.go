package stepinit

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// hostDirs are bound read-only into a step's root when they exist; where
// the host has a symlink (merged /usr: /bin -> usr/bin) the link is copied.
var hostDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// devices bound into the step's /dev.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// rootDir is where buildRoot mounts the step's root: a tmpfs over /tmp of
// the init's own (private) mount namespace, so nothing is made on the host.
const rootDir = "/tmp"

// buildRoot gives the step a root of its own, bubblewrap-style, in the new
// mount namespace the init was cloned into: a tmpfs with the host's system
// folders read-only, a private /tmp, /dev with the harmless devices, a /proc
// of its pid namespace, /input read-only, /output read-write and /app
// read-only, at rootDir. The host's root is never written. pivot then makes
// it the root.
func buildRoot(s Spec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// The folders to bind may live below rootDir: hold them open first and
	// bind them by descriptor.
	srcs := map[string]string{}
	for dst, src := range stepFolders(s) {
		// O_NOFOLLOW: an image folder lives in its owner's repo and could
		// be swapped for a link to a folder the owner may not reach (a
		// bind mount ignores the permissions of the path to it).
		fd, err := unix.Open(src, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", src, err)
		}
		defer func() { _ = unix.Close(fd) }() // O_PATH: nothing to flush
		if err := CheckStepFolder(fd, src); err != nil {
			return err
		}
		srcs[dst] = fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	if err := buildSystemRoot(rootDir); err != nil {
		return err
	}
	for dst, src := range srcs {
		// Bound as is, then remounted once with all its flags.
		if err := bind(src, filepath.Join(rootDir, dst), false); err != nil {
			return err
		}
		if err := limitStepFolder(filepath.Join(rootDir, dst), dst != "/output"); err != nil {
			return err
		}
	}
	return nil
}

// limitStepFolder remounts a step's folder bound at dst nosuid and nodev,
// as the rest of its root is (a set-id bit or a device file there gives
// nothing), and read-only but for /output (ro false).
func limitStepFolder(dst string, ro bool) error {
	flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV) | lockedFlags(dst)
	what := "nosuid"
	if ro {
		flags |= unix.MS_RDONLY
		what = "read-only"
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("%s %s: %w", what, dst, err)
	}
	return nil
}

// stepFolders are the spec's folders by their place in the step's root.
func stepFolders(s Spec) map[string]string {
	out := map[string]string{}
	for dst, src := range map[string]string{"/input": s.Input, "/output": s.Output, "/app": s.App} {
		if src != "" {
			out[dst] = src
		}
	}
	return out
}

// AheadFolders are, in order, the places of the spec's folders whose
// mounts a shim hands to an init that built its root ahead (bindAhead).
func AheadFolders(s Spec) []string {
	var out []string
	have := stepFolders(s)
	for _, dst := range []string{"/input", "/output", "/app"} {
		if _, ok := have[dst]; ok {
			out = append(out, dst)
		}
	}
	return out
}

// CheckStepFolder refuses a step folder (open as fd) that is neither a
// folder nor a regular file.
func CheckStepFolder(fd int, src string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFDIR && t != unix.S_IFREG {
		return fmt.Errorf("%s is a symlink or a special file, not a folder or file: refused", src)
	}
	return nil
}

// buildSystemRoot mounts at root the part of a step's root that is the same
// for every step: a tmpfs with the host's system folders read-only, a
// private /tmp and /dev/shm, /dev with the harmless devices and a /proc of
// the init's pid namespace.
func buildSystemRoot(root string) error {
	if err := unix.Mount("jobfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("tmpfs root: %w", err)
	}
	for _, d := range hostDirs {
		if err := bindHost(root, d); err != nil {
			return err
		}
	}
	if err := makeDev(root); err != nil {
		return err
	}
	for _, d := range []string{"/tmp", "/dev/shm"} {
		if err := os.MkdirAll(root+d, 0o1777); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", root+d, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
			return fmt.Errorf("tmpfs %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(root+"/proc", 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", root+"/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	return guardProc(root + "/proc")
}

// prebuildRoot is the step's root built by an init started ahead of its
// step, before the step is known: the mount namespace, the system part of
// the root (buildSystemRoot) and the pivot into it, about 1.7 ms of a
// trigger on a 2-core VM, are done while nothing waits. The host's root is
// detached at once: while it waits the init holds the system folders'
// binds (as a running step does) and, opened, the folders of the cgroup
// hierarchies it joins the step's cgroup through (cgroupRoots, closed
// before the step starts), not a copy of every mount of the host. The
// step's own folders come from its shim as mounts (bindAhead): the init
// sees nothing of the host's files but those.
func prebuildRoot() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("make the step's mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := buildSystemRoot(rootDir); err != nil {
		return fmt.Errorf("build the step's root: %w", err)
	}
	return enterRoot(rootDir)
}

// bindAhead mounts the step's folders into a root built ahead: mounts is
// one detached mount (open_tree) per place of AheadFolders(s), /output
// read-write, the others read-only.
func bindAhead(s Spec, mounts []int) error {
	places := AheadFolders(s)
	if len(mounts) != len(places) {
		return fmt.Errorf("the shim handed %d of the step's %d folders", len(mounts), len(places))
	}
	for i, dst := range places {
		var st unix.Stat_t
		if err := unix.Fstat(mounts[i], &st); err != nil {
			return fmt.Errorf("stat %s: %w", dst, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := os.Mkdir(dst, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
		} else if err := os.WriteFile(dst, nil, 0o644); err != nil {
			return err
		}
		if err := unix.MoveMount(mounts[i], "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("mount %s: %w", dst, err)
		}
		// Private, as buildRoot's binds: nothing the host mounts later in
		// the folder reaches the step.
		if err := unix.Mount("", dst, "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make %s private: %w", dst, err)
		}
		if err := limitStepFolder(dst, dst != "/output"); err != nil {
			return err
		}
	}
	return nil
}

// finishRoot makes the step's root read-only, once its folders are bound.
func finishRoot() error {
	if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		// A read-only tmpfs root is defence in depth; the binds are what matter.
		_ = err
	}
	return os.Chdir("/")
}

func bindHost(root, d string) error {
	st, err := os.Lstat(d)
	if err != nil {
		return nil
	}
	if st.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(d)
		if err != nil {
			return err
		}
		return os.Symlink(target, root+d)
	}
	return bind(d, root+d, true)
}

// bind mounts src on dst (created), read-only when ro.
func bind(src, dst string, ro bool) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if st.IsDir() {
		err = os.MkdirAll(dst, 0o755)
	} else {
		err = os.MkdirAll(filepath.Dir(dst), 0o755)
		if err == nil {
			err = os.WriteFile(dst, nil, 0o644)
		}
	}
	if err != nil {
		return err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	if ro {
		flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID) | lockedFlags(dst)
		if err := unix.Mount("", dst, "", flags, ""); err != nil {
			return fmt.Errorf("read-only %s: %w", src, err)
		}
	}
	return nil
}

// procReadOnly are the parts of /proc that act on the whole machine, not
// the step's pid namespace (sysrq-trigger obeys only file permissions: a
// root step could reboot the host). As in Docker, they are made read-only.
var procReadOnly = []string{"bus", "fs", "irq", "sys", "sysrq-trigger"}

// procHidden leak the host's memory or keys; /dev/null is bound over them.
var procHidden = []string{"kcore", "keys", "timer_list", "kallsyms"}

func guardProc(proc string) error {
	for _, p := range procReadOnly {
		p = proc + "/" + p
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", p, err)
		}
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount("", p, "", flags, ""); err != nil {
			return fmt.Errorf("read-only %s: %w", p, err)
		}
	}
	for _, p := range procHidden {
		p = proc + "/" + p
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := unix.Mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("hide %s: %w", p, err)
		}
	}
	return nil
}

func makeDev(root string) error {
	if err := os.MkdirAll(root+"/dev", 0o755); err != nil {
		return err
	}
	for _, d := range devices {
		if err := bind("/dev/"+d, root+"/dev/"+d, false); err != nil {
			return err
		}
	}
	for link, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, root+"/dev/"+link); err != nil {
			return err
		}
	}
	return nil
}

// pivot makes root the process's root, drops the host's and makes the
// root read-only.
func pivot(root string) error {
	if err := enterRoot(root); err != nil {
		return err
	}
	return finishRoot()
}

// enterRoot makes root the process's root and drops the host's.
func enterRoot(root string) error {
	if err := os.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host root: %w", err)
	}
	return os.Chdir("/")
}

// lockedFlags are the flags of the mount at dst that a remount must keep:
// in a user namespace the kernel refuses (EPERM) a remount that would clear
// nodev, noexec or nosuid, or change the atime mode, of a mount it copied
// from the host.
func lockedFlags(dst string) uintptr {
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return 0 // the remount then says what is wrong
	}
	var out uintptr
	for stFlag, ms := range map[int64]uintptr{
		unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_NOSUID: unix.MS_NOSUID,
		unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if int64(st.Flags)&stFlag != 0 {
			out |= ms
		}
	}
	return out
}
