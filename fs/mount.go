package fs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// MountOptions configure Mount.
type MountOptions struct {
	Debug      bool // log every FUSE request
	AllowOther bool // every local user may use the mount (shared machine)
	ReadOnly   bool // mount ro: nothing can be changed through the mount
	NoExec     bool // mount noexec
	// Count, when set, is told of every FUSE request answered: its
	// operation and errno (the metrics' jobfs_fuse_operations_total).
	Count func(op string, errno int)
	// StallLog takes the goroutines' stacks when the mount stalls at
	// start (awaitAnswer); nil: standard error.
	StallLog io.Writer
}

// Mount mounts root at mountpoint and returns once the mount answers. As
// root it calls mount(2) directly; otherwise go-fuse uses fusermount3.
// `df -T` shows the type fuse.jobfs.
func Mount(mountpoint string, root gofs.InodeEmbedder, o MountOptions) (*fuse.Server, error) {
	if problem := fuseProblem(o.AllowOther); problem != "" {
		return nil, fmt.Errorf("mount %s: %s", mountpoint, problem)
	}
	var kernelOpts []string
	if o.ReadOnly {
		kernelOpts = append(kernelOpts, "ro")
	}
	if o.NoExec {
		kernelOpts = append(kernelOpts, "noexec")
	}
	zero := time.Duration(0)
	opts := &gofs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		NullPermissions: true, // a mode of 0 is shown as 0, not go-fuse's 0644 (a staged chmod 0)
		// The root's inode number, as stat and the .. of a job show it: 0
		// would be none (ls prints "?"); ino() never gives 1.
		RootStableAttr: &gofs.StableAttr{Ino: 1},
		MountOptions: fuse.MountOptions{
			FsName:        "jobfs",
			Name:          "jobfs",
			DirectMount:   os.Geteuid() == 0,
			Debug:         o.Debug,
			AllowOther:    o.AllowOther,
			DisableXAttrs: true,
			// No READDIRPLUS: go-fuse answers it with a lookup of every
			// name, which only job folders' kept entries (cache.go) would
			// repay. Measured with 100,000 jobs (2 cores): always on, `ls`
			// took 1.5 s, not 0.25; with READDIRPLUS_AUTO `ls` stayed, the
			// first `ls -l` took 2.3 s instead of 6.7, but every later one
			// 2.0 s instead of 1.1 (served from kept entries), most of it
			// go-fuse registering 100,000 nodes again.
			DisableReadDirPlus: true,
			MaxWrite:           1 << 20,
			Options:            kernelOpts,
		},
	}
	mountpoint = Resolved(mountpoint)
	server, err := newServer(mountpoint, root, opts, o.Count)
	if err != nil {
		if os.Geteuid() != 0 {
			return nil, fmt.Errorf("mount %s: %w (fusermount3 printed the reason above)", mountpoint, err)
		}
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	stallLog := o.StallLog
	if stallLog == nil {
		stallLog = os.Stderr
	}
	if err := awaitAnswer(server, mountpoint, startWait, stallLog); err != nil {
		return nil, err
	}
	closeFuseOnExec()
	passthroughOK.Store(probePassthrough(server))
	return server, nil
}

// probePassthrough reports whether the kernel registers a backing file for
// this mount (FUSE passthrough: Linux 6.9+ and CAP_SYS_ADMIN, so root only),
// trying with the daemon's own binary and letting it go at once.
func probePassthrough(server *fuse.Server) bool {
	fd, err := syscall.Open("/proc/self/exe", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer func() { _ = syscall.Close(fd) }() // read only: nothing to flush
	id, errno := server.RegisterBackingFd(&fuse.BackingMap{Fd: int32(fd)})
	if errno != 0 {
		return false
	}
	return server.UnregisterBackingFd(id) == 0
}

// newServer mounts and starts serving, as gofs.Mount without its wait for
// the first answers (awaitAnswer), with every answer counted when count is
// set.
func newServer(mountpoint string, root gofs.InodeEmbedder, opts *gofs.Options, count func(string, int)) (*fuse.Server, error) {
	if count == nil { // the wrapper's fixes (SETATTR's inode, names' length) apply all the same
		count = func(string, int) {}
	}
	backing := newBackingFS(gofs.NewNodeFS(root, opts))
	raw := &countingFS{RawFileSystem: backing, count: count}
	server, err := fuse.NewServer(raw, mountpoint, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	backing.server = server // before Serve: no request is answered yet
	go server.Serve()
	return server, nil
}

// startWait bounds the first answers of a new mount (awaitAnswer). They
// take milliseconds; the bound is for a stall, never a slow machine.
const startWait = 15 * time.Second

// errStalled is awaitAnswer's error when the mount did not answer in time.
var errStalled = errors.New("did not answer its first requests")

// awaitAnswer waits until the new mount answers: go-fuse's WaitMount (its
// open and poll of .go-fuse-epoll-hack, so the kernel never sends this
// process a POLL), then a stat of the mountpoint. Once in many hundreds of
// starts under load a daemon stalled there, a step before its ready line,
// and could not even die: its exit's close of that file waited on a FLUSH
// nobody would answer. Past wait it writes every goroutine's stack to
// stallLog, so the stall can be read later, aborts the connection (every
// waiting request fails, the stalled open or close too) and detaches the
// mount, and fails.
func awaitAnswer(server *fuse.Server, mountpoint string, wait time.Duration, stallLog io.Writer) error {
	answered := make(chan error, 1)
	go func() {
		if err := server.WaitMount(); err != nil {
			answered <- err
			return
		}
		var st syscall.Stat_t
		answered <- syscall.Stat(mountpoint, &st)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-answered:
		if err == nil {
			return nil
		}
		if uerr := server.Unmount(); uerr != nil {
			return fmt.Errorf("mount %s does not answer: %w (and unmounting it: %v)", mountpoint, err, uerr)
		}
		return fmt.Errorf("mount %s does not answer: %w", mountpoint, err)
	case <-t.C:
	}
	// A diagnosis only: the error below is what counts.
	_, _ = fmt.Fprintf(stallLog, "jobfs: mount %s %s within %v; the daemon's goroutines:\n", mountpoint, errStalled, wait)
	_ = pprof.Lookup("goroutine").WriteTo(stallLog, 2)
	how := abortConnection(mountpoint)
	select {
	case <-answered: // the stalled request failed with the connection
	case <-time.After(wait):
		how += "; its first requests still wait"
	}
	return fmt.Errorf("mount %s %w within %v (%s); start jobfs again", mountpoint, errStalled, wait, how)
}

// abortConnection ends the FUSE connection of the mount at mountpoint,
// failing every request that waits for an answer, and detaches the mount;
// it says what it did. As root, umount2 with MNT_FORCE aborts the
// connection (FUSE's umount_begin); a normal user writes the connection's
// abort file in fusectl, where that is mounted.
func abortConnection(mountpoint string) string {
	if os.Geteuid() == 0 {
		if err := syscall.Unmount(mountpoint, syscall.MNT_FORCE|syscall.MNT_DETACH); err != nil {
			return fmt.Sprintf("aborting its connection failed: %v", err)
		}
		return "its connection was aborted and the mount detached"
	}
	how := fmt.Sprintf("its connection could not be aborted: %s is not in /proc/self/mountinfo", mountpoint)
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(mountpoint))
	if err == nil && len(ms) > 0 {
		abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", ms[len(ms)-1].Minor)
		switch err := os.WriteFile(abort, []byte("1"), 0); {
		case err == nil:
			how = "its connection was aborted"
		case errors.Is(err, os.ErrNotExist):
			how = "its connection could not be aborted (fusectl is not mounted at /sys/fs/fuse/connections)"
		default:
			how = fmt.Sprintf("aborting its connection failed: %v", err)
		}
	}
	if err := lazyUnmount(mountpoint); err != nil {
		return how + fmt.Sprintf("; detaching the mount failed: %v", err)
	}
	return how + " and the mount detached"
}

// closeFuseOnExec marks the daemon's /dev/fuse descriptors close-on-exec:
// go-fuse opens them without O_CLOEXEC, and a step that inherited one could
// answer FUSE requests of the mount in the daemon's place.
func closeFuseOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "/dev/fuse" {
			syscall.CloseOnExec(fd)
		}
	}
}

// Unmount unmounts the server, detaching lazily when the mount is busy (a
// shell sitting in it), so the daemon can always exit.
//
// go-fuse's Unmount returns once the kernel has ended the connection,
// which it does when the last copy of the mount goes. A step's mount
// namespace made in a user namespace (a normal user's daemon) keeps a
// copy of every mount of its daemon's, this one included, locked to the
// host's root it detached (the kernel keeps locked mounts with their
// parent): the connection then lasted as long as the step, and so did
// the daemon's stop. Once the mount is gone from the daemon's own
// namespace the daemon goes on after unmountWait; its exit closes
// /dev/fuse, which ends the connection (the copy answers ENOTCONN).
//
// mountpoint is the path mountinfo names the mount by (Resolved).
func Unmount(server *fuse.Server, mountpoint string) error {
	done := make(chan error, 1)
	go func() { done <- server.Unmount() }()
	t := time.NewTimer(unmountWait)
	defer t.Stop()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
	case <-t.C:
		if _, ok := mountedAt(mountpoint); !ok {
			return nil // unmounted here; only a copy elsewhere holds the connection
		}
	}
	return lazyUnmount(mountpoint)
}

// Resolved is mountpoint with its symlinks resolved, as the kernel and
// mountinfo name a mount made there: resolved before mounting, since a
// stat of the mount could wait on a stall, and kept for Unmount.
func Resolved(mountpoint string) string {
	if real, err := filepath.EvalSymlinks(mountpoint); err == nil {
		return real
	}
	return mountpoint
}

// unmountWait is how long Unmount waits for the kernel to end the
// connection of a mount it has unmounted.
const unmountWait = 2 * time.Second

func lazyUnmount(mountpoint string) error {
	if os.Geteuid() == 0 {
		return syscall.Unmount(mountpoint, syscall.MNT_DETACH)
	}
	out, err := exec.Command("fusermount3", "-u", "-z", mountpoint).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -uz %s: %v: %s", mountpoint, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// PrepareMountpoint makes mountpoint ready to mount on: it is created when
// missing, a stale mount left by a killed daemon ("Transport endpoint is not
// connected") is detached, and a live mount is refused. It returns the
// absolute path, whether a stale mount was recovered and whether the folder
// was created (a mount refused later should remove it again).
func PrepareMountpoint(mountpoint string) (abs string, recovered, created bool, err error) {
	abs, err = filepath.Abs(mountpoint)
	if err != nil {
		return "", false, false, err
	}
	var st syscall.Stat_t
	err = syscall.Stat(abs, &st)
	// ENOTCONN: the daemon is gone; ECONNABORTED: its connection was aborted
	// (echo 1 > /sys/fs/fuse/connections/N/abort).
	if errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED) {
		if err := lazyUnmount(abs); err != nil {
			return "", false, false, fmt.Errorf("%s: stale mount of a stopped daemon, and unmounting it failed: %w", abs, err)
		}
		recovered = true
		err = syscall.Stat(abs, &st)
	}
	if errors.Is(err, syscall.ENOENT) {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return "", false, false, err
		}
		return abs, recovered, true, nil
	}
	if err != nil {
		return "", false, false, fmt.Errorf("%s: %w", abs, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return "", false, false, fmt.Errorf("%s is not a folder", abs)
	}
	if fstype, ok := mountedAt(abs); ok {
		return "", false, false, fmt.Errorf("%s is already mounted (%s); unmount it first: fusermount3 -u %s", abs, fstype, abs)
	}
	return abs, recovered, false, nil
}

// mountedAt reports whether something is mounted exactly at path, and its
// type, from /proc/self/mountinfo (unreadable: nothing known to be there).
func mountedAt(path string) (string, bool) {
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil || len(ms) == 0 {
		return "", false
	}
	return ms[len(ms)-1].FSType, true // the last mounted hides the others
}

// devFuse is the FUSE device every mount opens.
const devFuse = "/dev/fuse"

// fuseProblem says in one sentence what keeps this process from mounting
// and how to fix it, or "" when nothing is known to be wrong. Without it a
// user sees fusermount3's bare "Permission denied".
func fuseProblem(allowOther bool) string {
	st, err := os.Stat(devFuse)
	if errors.Is(err, os.ErrNotExist) {
		return "/dev/fuse is missing: load the fuse module (as root: modprobe fuse), or in a container pass the device in (--device /dev/fuse)"
	}
	if err != nil {
		return fmt.Sprintf("cannot look at /dev/fuse (%v): as root, check that it exists with mode 0666", err)
	}
	if st.Mode()&os.ModeCharDevice == 0 {
		return "/dev/fuse is not the FUSE device: as root, rm /dev/fuse && mknod -m 0666 /dev/fuse c 10 229"
	}
	if err := unix.Access(devFuse, unix.R_OK|unix.W_OK); err != nil {
		return devFuseHint(fileOwner(st), currentUserName())
	}
	if os.Geteuid() == 0 {
		return ""
	}
	return fusermountProblem(allowOther)
}

// fusermountProblem checks what a normal user's mount goes through:
// fusermount3, set-user-ID root, and /etc/fuse.conf for allow_other.
func fusermountProblem(allowOther bool) string {
	path, err := exec.LookPath("fusermount3")
	if err != nil {
		if path, err = exec.LookPath("fusermount"); err != nil {
			return "fusermount3 is not installed (or not on PATH), and a normal user mounts through it: install the fuse3 package (as root: apt-get install fuse3)"
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Sprintf("cannot look at %s (%v): reinstall the fuse3 package", path, err)
	}
	if o := fileOwner(st); st.Mode()&os.ModeSetuid == 0 || o.uid != 0 {
		return fmt.Sprintf("%s is not set-user-ID root (mode %#o, owner %s), so it cannot mount for you: as root, chown root %s && chmod u+s %s (or reinstall fuse3)",
			path, o.perm, o.owner, path, path)
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		o := fileOwner(st)
		return fmt.Sprintf("you may not run %s (mode %#o, group %s): as root, add your user to group %s (usermod -aG %s %s, then log in again)",
			path, o.perm, o.group, o.group, o.group, currentUserName())
	}
	if allowOther && !userAllowOther("/etc/fuse.conf") {
		return "allow_other is refused to normal users unless /etc/fuse.conf has the line user_allow_other: as root, echo user_allow_other >> /etc/fuse.conf"
	}
	return ""
}

// owner is who owns a file, by id and name, and its permission bits.
type owner struct {
	uid          uint32
	owner, group string
	perm         os.FileMode
}

func fileOwner(st os.FileInfo) owner {
	o := owner{perm: st.Mode().Perm(), owner: "?", group: "?"}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return o
	}
	o.uid = sys.Uid
	o.owner = strconv.FormatUint(uint64(sys.Uid), 10)
	if u, err := user.LookupId(o.owner); err == nil {
		o.owner = u.Username
	}
	o.group = strconv.FormatUint(uint64(sys.Gid), 10)
	if g, err := user.LookupGroupId(o.group); err == nil {
		o.group = g.Name
	}
	return o
}

// devFuseHint is the fix for a /dev/fuse this user cannot open: join its
// group when the group may use it, else open it up (the usual mode is 0666)
// or grant this one user with an ACL.
func devFuseHint(o owner, who string) string {
	if o.group != "root" && o.group != "?" && o.perm&0o060 == 0o060 {
		return fmt.Sprintf("your user %s cannot open /dev/fuse (mode %#o, %s:%s): as root, add it to group %s (usermod -aG %s %s, then log in again)",
			who, o.perm, o.owner, o.group, o.group, o.group, who)
	}
	return fmt.Sprintf("your user %s cannot open /dev/fuse (mode %#o, %s:%s): as root, chmod 0666 /dev/fuse (the usual mode) or grant this user alone with setfacl -m u:%s:rw /dev/fuse",
		who, o.perm, o.owner, o.group, who)
}

func currentUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// userAllowOther reports whether the fuse.conf at path has an active
// user_allow_other line.
func userAllowOther(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l, _, _ = strings.Cut(l, "#"); strings.TrimSpace(l) == "user_allow_other" {
			return true
		}
	}
	return false
}
