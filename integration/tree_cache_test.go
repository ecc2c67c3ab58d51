//go:build linux

package integration

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The kernel keeps a job's entry in the top folder and its folder's
// attributes (fs/cache.go) on a single-user mount; these tests check, through
// a real mount, that a kept answer is really kept (a second stat reaches no
// daemon) and that every change made by another process shows at the very
// next stat, and that nothing is kept where answers differ per caller
// (--allow-other) or another daemon changes the tree (cluster).

// tcStat stats path: its inode number and mtime, or the error.
func tcStat(path string) (syscall.Stat_t, error) {
	var st syscall.Stat_t
	err := syscall.Stat(path, &st)
	return st, err
}

// tcMustStat is tcStat that fails the test on an error.
func tcMustStat(t *testing.T, path string) syscall.Stat_t {
	t.Helper()
	st, err := tcStat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st
}

// tcRequests is how many LOOKUP and GETATTR requests the daemon answered,
// from its metrics at addr.
func tcRequests(t *testing.T, addr string) float64 {
	t.Helper()
	return tcOps(t, addr, "lookup", "getattr")
}

// tcOps is how many requests of the given operations the daemon answered,
// from its metrics at addr.
func tcOps(t *testing.T, addr string, ops ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	if f, ok := families["jobfs_fuse_operations_total"]; ok {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && slices.Contains(ops, l.GetValue()) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// TestTreeCacheKeptAndInvalidated: on a single-user mount a stat of a job
// folder that was stat'ed before costs the daemon nothing, and every change
// of the folder by another process (a rename, an rmdir and a new job of the
// same name, a temporary file in it) or a new job shows at the next stat.
func TestTreeCacheKeptAndInvalidated(t *testing.T) {
	t.Parallel()
	addr := ovFreePort(t)
	d := startDaemon(t, daemonOpts{args: []string{"--metrics", addr}})
	d.ok(t, `mkdir mnt/a mnt/b`)
	a := filepath.Join(d.mnt, "a")

	first := tcMustStat(t, a)
	time.Sleep(300 * time.Millisecond) // the store's feed reports the mkdirs: it must not drop what is kept
	before := tcRequests(t, addr)
	again := tcMustStat(t, a)
	if got := tcRequests(t, addr) - before; got != 0 {
		t.Errorf("a second stat of a job folder made %v LOOKUP/GETATTR requests, want 0 (kept by the kernel)", got)
	}
	if again.Ino != first.Ino || again.Mtim != first.Mtim || again.Mode != first.Mode {
		t.Errorf("a kept stat differs: %+v, then %+v", first, again)
	}

	t.Run("renamed by another process", func(t *testing.T) {
		d.ok(t, `mv mnt/a mnt/a2`)
		if _, err := tcStat(a); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("stat of the old name after mv: %v, want ENOENT", err)
		}
		if st := tcMustStat(t, filepath.Join(d.mnt, "a2")); st.Ino != first.Ino {
			t.Errorf("the renamed job has inode %d, want %d (the same job)", st.Ino, first.Ino)
		}
		if got := d.cat(t, "mnt/a2/name"); got != "a2\n" {
			t.Errorf("name after the rename: %q", got)
		}
	})

	t.Run("deleted and made again by another process", func(t *testing.T) {
		b := filepath.Join(d.mnt, "b")
		old := tcMustStat(t, b)
		tcMustStat(t, b) // kept
		d.ok(t, `rmdir mnt/b`)
		if _, err := tcStat(b); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("stat after rmdir: %v, want ENOENT", err)
		}
		d.ok(t, `mkdir mnt/b`)
		if st := tcMustStat(t, b); st.Ino == old.Ino {
			t.Errorf("the new job b shows the deleted job's inode %d", st.Ino)
		}
	})

	t.Run("a temporary file in the folder", func(t *testing.T) {
		p := filepath.Join(d.mnt, "a2")
		old := tcMustStat(t, p)
		d.ok(t, `echo x > mnt/a2/.draft.tmp`)
		if st := tcMustStat(t, p); st.Mtim == old.Mtim {
			t.Errorf("the folder's mtime stayed %v after a file was created in it", old.Mtim)
		}
		mid := tcMustStat(t, p)
		d.ok(t, `rm mnt/a2/.draft.tmp`)
		if st := tcMustStat(t, p); st.Mtim == mid.Mtim {
			t.Errorf("the folder's mtime stayed %v after a file was removed from it", mid.Mtim)
		}
	})

	t.Run("a new job shows at once", func(t *testing.T) {
		c := filepath.Join(d.mnt, "c")
		if _, err := tcStat(c); !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("stat of a job not made yet: %v, want ENOENT", err)
		}
		d.ok(t, `mkdir mnt/c`)
		tcMustStat(t, c)
	})
}

// tcList is the sorted listing of dir (without . and ..).
func tcList(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return strings.Join(names, " ")
}

// TestTreeCacheListing: the kernel keeps the top folder's listing (a second
// listing reads nothing from the daemon), and a job made, renamed or
// deleted by another process shows in the very next listing.
func TestTreeCacheListing(t *testing.T) {
	t.Parallel()
	addr := ovFreePort(t)
	d := startDaemon(t, daemonOpts{args: []string{"--metrics", addr}})
	d.ok(t, `mkdir mnt/a mnt/b`)
	want := ".jobfs a b"
	if got := tcList(t, d.mnt); got != want {
		t.Fatalf("listing %q, want %q", got, want)
	}
	before := tcOps(t, addr, "readdir", "readdirplus")
	if before == 0 {
		t.Fatal("the first listing counted no READDIR request: the metric's op label changed?")
	}
	// The store's change feed reports the mkdirs too, asynchronously (a CI
	// run once saw it arrive between the two listings): an answer to it
	// that invalidated the entries, though the kernel made them itself,
	// dropped the kept listing. Give the feed time to arrive first.
	time.Sleep(300 * time.Millisecond)
	if got := tcList(t, d.mnt); got != want {
		t.Fatalf("second listing %q, want %q", got, want)
	}
	if got := tcOps(t, addr, "readdir", "readdirplus") - before; got != 0 {
		t.Errorf("a second listing made %v READDIR requests, want 0 (kept by the kernel)", got)
	}
	for _, c := range []struct{ script, want string }{
		{`mkdir mnt/c`, ".jobfs a b c"},
		{`mv mnt/a mnt/d`, ".jobfs b c d"},
		{`rmdir mnt/b`, ".jobfs c d"},
		{`mkdir mnt/b`, ".jobfs b c d"},
	} {
		d.ok(t, c.script)
		if got := tcList(t, d.mnt); got != c.want {
			t.Errorf("after %s: listing %q, want %q", c.script, got, c.want)
		}
	}
}

// TestTreeCacheNotOnSharedMount: with --allow-other a name in the top
// folder means each caller's own job and a job folder's mode bits what the
// caller may do, so the kernel, whose cache all callers share, keeps
// nothing: every stat reaches the daemon.
func TestTreeCacheNotOnSharedMount(t *testing.T) {
	t.Parallel()
	addr := ovFreePort(t)
	d := startDaemon(t, daemonOpts{args: []string{"--metrics", addr, "--allow-other"}})
	d.ok(t, `mkdir mnt/a`)
	a := filepath.Join(d.mnt, "a")
	tcMustStat(t, a)
	before := tcRequests(t, addr)
	tcMustStat(t, a)
	if got := tcRequests(t, addr) - before; got == 0 {
		t.Error("a second stat on a shared mount reached no daemon: the kernel kept an answer that depends on the caller")
	}
}

// TestClusterCacheRename: two daemons of one etcd tree; a job renamed and
// deleted through one shows so through the other at its next stat. Nothing
// is kept with a cluster store; with entries kept this passed too on a
// quiet machine (the store's watch invalidated them before the next stat),
// so it checks the outcome, not which of the two gave it.
func TestClusterCacheRename(t *testing.T) {
	t.Parallel()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	tc := &teamCluster{etcd: startEtcd(t, 1), data: t.TempDir(), state: t.TempDir(), prefix: "/" + t.Name() + "/"}
	one := startDaemon(t, daemonOpts{args: tc.nodeArgs("one")})
	two := startDaemon(t, daemonOpts{args: tc.nodeArgs("two")})
	one.ok(t, `mkdir mnt/j`)
	first := tcMustStat(t, filepath.Join(two.mnt, "j"))
	tcMustStat(t, filepath.Join(two.mnt, "j"))
	one.ok(t, `mv mnt/j mnt/k`)
	if _, err := tcStat(filepath.Join(two.mnt, "j")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("the other node still shows the old name after the rename: %v, want ENOENT", err)
	}
	if st := tcMustStat(t, filepath.Join(two.mnt, "k")); st.Ino != first.Ino {
		t.Errorf("the renamed job has inode %d on the other node, want %d", st.Ino, first.Ino)
	}
	one.ok(t, `rmdir mnt/k`)
	if _, err := tcStat(filepath.Join(two.mnt, "k")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("the other node still shows a deleted job: %v, want ENOENT", err)
	}
	if _, err := os.Stat(filepath.Join(one.mnt, "k")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the node that deleted it still shows it: %v", err)
	}
}
