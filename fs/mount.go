package fs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// MountOptions configure Mount.
type MountOptions struct {
	Debug      bool // log every FUSE request
	AllowOther bool // every local user may use the mount (shared machine)
}

// Mount mounts root at mountpoint and returns once the mount answers. As
// root it calls mount(2) directly; otherwise go-fuse uses fusermount3.
// `df -T` shows the type fuse.jobfs.
func Mount(mountpoint string, root gofs.InodeEmbedder, o MountOptions) (*fuse.Server, error) {
	zero := time.Duration(0)
	opts := &gofs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName:        "jobfs",
			Name:          "jobfs",
			DirectMount:   os.Geteuid() == 0,
			Debug:         o.Debug,
			AllowOther:    o.AllowOther,
			DisableXAttrs: true,
			MaxWrite:      1 << 20,
		},
	}
	server, err := gofs.Mount(mountpoint, root, opts)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(mountpoint, &st); err != nil {
		server.Unmount()
		return nil, fmt.Errorf("mount %s does not answer: %w", mountpoint, err)
	}
	closeFuseOnExec()
	return server, nil
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
func Unmount(server *fuse.Server, mountpoint string) error {
	if err := server.Unmount(); err == nil {
		return nil
	}
	return lazyUnmount(mountpoint)
}

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
// absolute path and whether a stale mount was recovered.
func PrepareMountpoint(mountpoint string) (string, bool, error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", false, err
	}
	recovered := false
	var st syscall.Stat_t
	err = syscall.Stat(abs, &st)
	// ENOTCONN: the daemon is gone; ECONNABORTED: its connection was aborted
	// (echo 1 > /sys/fs/fuse/connections/N/abort).
	if errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED) {
		if err := lazyUnmount(abs); err != nil {
			return "", false, fmt.Errorf("%s: stale mount of a stopped daemon, and unmounting it failed: %w", abs, err)
		}
		recovered = true
		err = syscall.Stat(abs, &st)
	}
	if errors.Is(err, syscall.ENOENT) {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return "", false, err
		}
		return abs, recovered, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", abs, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return "", false, fmt.Errorf("%s is not a folder", abs)
	}
	if fstype, ok := mountedAt(abs); ok {
		return "", false, fmt.Errorf("%s is already mounted (%s); unmount it first: fusermount3 -u %s", abs, fstype, abs)
	}
	return abs, recovered, nil
}

// mountedAt reports whether something is mounted exactly at path, and its
// type, from /proc/self/mountinfo.
func mountedAt(path string) (string, bool) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 10 || unescapeMount(f[4]) != path {
			continue
		}
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				return f[i+1], true
			}
		}
		return "unknown", true
	}
	return "", false
}

// unescapeMount undoes the octal escapes of mountinfo (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
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
