package fs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Each /dev/fuse problem gets one sentence with its fix.
func TestDevFuseHint(t *testing.T) {
	for _, c := range []struct {
		o    owner
		want []string
	}{
		{owner{owner: "root", group: "root", perm: 0o600}, []string{"mode 0600, root:root", "chmod 0666 /dev/fuse", "setfacl -m u:alice:rw /dev/fuse"}},
		{owner{owner: "root", group: "fuse", perm: 0o660}, []string{"mode 0660, root:fuse", "usermod -aG fuse alice"}},
		{owner{owner: "root", group: "fuse", perm: 0o600}, []string{"chmod 0666 /dev/fuse"}},
	} {
		got := devFuseHint(c.o, "alice")
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("devFuseHint(%+v) = %q, want %q in it", c.o, got, w)
			}
		}
		if strings.Count(got, ". ") > 0 || strings.Contains(got, "\n") {
			t.Errorf("devFuseHint(%+v) = %q: want one sentence", c.o, got)
		}
	}
}

func TestUserAllowOther(t *testing.T) {
	dir := t.TempDir()
	for conf, want := range map[string]bool{
		"# mount_max = 1000\n#user_allow_other\n": false,
		"mount_max = 10\n  user_allow_other  \n":  true,
		"user_allow_other # for jobfs\n":          true,
		"":                                        false,
	} {
		p := filepath.Join(dir, "fuse.conf")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := userAllowOther(p); got != want {
			t.Errorf("userAllowOther(%q) = %v, want %v", conf, got, want)
		}
	}
	if userAllowOther(filepath.Join(dir, "missing")) {
		t.Error("a missing fuse.conf allows other")
	}
}

// Where this test can mount (root, /dev/fuse present), no problem is found.
func TestFuseProblemNoneHere(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: whether a user may mount depends on the host")
	}
	if _, err := os.Stat(devFuse); err != nil {
		if got := fuseProblem(false); !strings.Contains(got, "modprobe fuse") {
			t.Errorf("without /dev/fuse: %q, want the modprobe fix", got)
		}
		return
	}
	if got := fuseProblem(true); got != "" {
		t.Errorf("root with /dev/fuse: %q, want no problem", got)
	}
}

// A mount that never answers its first requests (here: mounted, its INIT
// answered, but never served, as in the stall awaitAnswer guards against)
// fails the start within the bound: every goroutine's stack is logged, the
// connection is aborted, so the stalled open fails instead of waiting for
// ever, and the mount is gone.
func TestAwaitAnswerStalled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("aborting a connection with MNT_FORCE needs root")
	}
	if _, err := os.Stat(devFuse); err != nil {
		t.Skipf("no %s", devFuse)
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := fuse.MountOptions{FsName: "jobfs-stall", Name: "jobfs", DirectMount: true}
	server, err := fuse.NewServer(gofs.NewNodeFS(&gofs.Inode{}, &gofs.Options{}), mnt, &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, ok := mountedAt(mnt); ok {
			if err := syscall.Unmount(mnt, syscall.MNT_FORCE|syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", mnt, err)
			}
		}
		go server.Serve() // reads ENODEV of the aborted connection and closes /dev/fuse
		server.Wait()
	}()
	var dump bytes.Buffer
	start := time.Now()
	err = awaitAnswer(server, mnt, 300*time.Millisecond, &dump)
	if !errors.Is(err, errStalled) || !strings.Contains(err.Error(), "aborted") {
		t.Errorf("awaitAnswer = %v, want the stall, with its connection aborted", err)
	}
	t.Log(err)
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("awaitAnswer took %v", took)
	}
	if !strings.Contains(dump.String(), "goroutine ") || !strings.Contains(dump.String(), "WaitMount") {
		t.Errorf("stall log has no goroutine stacks naming WaitMount:\n%.2000s", dump.String())
	}
	if _, ok := mountedAt(mnt); ok {
		t.Errorf("%s still mounted after the stall", mnt)
	}
}
