package fs

import (
	"context"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// adapterJob makes a Manager with one job of the caller's and the tree
// attached to go-fuse's bridge (never mounted), and returns the job, the
// root and a request context of the job's owner.
func adapterJob(t *testing.T) (*jobs.Manager, jobs.Job, *gofs.Inode, context.Context) {
	t.Helper()
	m, err := jobs.New(jobs.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	me := uint32(os.Geteuid())
	j, err := m.CreateJob(me, "edited")
	if err != nil {
		t.Fatal(err)
	}
	root := NewRoot(m, me, false)
	gofs.NewNodeFS(root, &gofs.Options{}) // attaches the bridge NewInode needs
	ctx := fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: me, Gid: uint32(os.Getegid())}, Pid: uint32(os.Getpid())})
	return m, j, root.EmbeddedInode(), ctx
}

// lookupPath looks up a path below in, name by name, as the kernel does.
func lookupPath(t *testing.T, ctx context.Context, in *gofs.Inode, path string) *gofs.Inode {
	t.Helper()
	for _, name := range strings.Split(path, "/") {
		lk, ok := in.Operations().(gofs.NodeLookuper)
		if !ok {
			t.Fatalf("%s: %T has no Lookup", name, in.Operations())
		}
		var out fuse.EntryOut
		child, errno := lk.Lookup(ctx, name, &out)
		if errno != 0 {
			t.Fatalf("lookup %s in %s: %v", name, path, errno)
		}
		in.AddChild(name, child, true)
		in = child
	}
	return in
}

// openSetting opens a setting file through the adapter as open(2) would.
func openSetting(t *testing.T, ctx context.Context, in *gofs.Inode, flags uint32) *settingHandle {
	t.Helper()
	fh, _, errno := in.Operations().(gofs.NodeOpener).Open(ctx, flags)
	if errno != 0 {
		t.Fatalf("open flags %#o: %v", flags, errno)
	}
	return fh.(*settingHandle)
}

// eventLog reads the job's event log.
func eventLog(t *testing.T, m *jobs.Manager, jobID string) string {
	t.Helper()
	f, err := m.OpenLog(jobID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read only
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A value written through the adapter is stored at Flush (close(2) waits
// for it), a refused later part is answered in Write and puts back the
// value from before the handle's first commit, and Release gives back the
// handle's budget.
func TestSettingHandleFlushRelease(t *testing.T) {
	m, j, root, ctx := adapterJob(t)
	in := lookupPath(t, ctx, root, "edited/config/timeout")
	tr := in.Operations().(*settingFile).t

	h := openSetting(t, ctx, in, syscall.O_WRONLY|syscall.O_TRUNC)
	if _, errno := h.Write(ctx, []byte("30s\n"), 0); errno != 0 {
		t.Fatalf("write 30s: %v", errno)
	}
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); strings.TrimSpace(v) == "30s" {
		t.Fatalf("stored before the flush: %q", v)
	}
	if errno := h.Flush(ctx); errno != 0 {
		t.Fatalf("flush: %v", errno)
	}
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); strings.TrimSpace(v) != "30s" {
		t.Fatalf("after flush: %q, want 30s", v)
	}
	if errno := h.Release(ctx); errno != 0 {
		t.Fatalf("release: %v", errno)
	}

	// A second writer commits 40s, then a part no line can cure is refused:
	// 30s, the value before its first commit, is back.
	h = openSetting(t, ctx, in, syscall.O_WRONLY|syscall.O_TRUNC)
	if used, _ := tr.temps.budget.used(uint32(os.Geteuid())); used != 0 {
		// O_TRUNC reserves nothing until a write.
		t.Errorf("an empty write handle holds %d bytes", used)
	}
	if _, errno := h.Write(ctx, []byte("40s\n"), 0); errno != 0 {
		t.Fatalf("write 40s: %v", errno)
	}
	if errno := h.Flush(ctx); errno != 0 {
		t.Fatalf("flush 40s: %v", errno)
	}
	if _, errno := h.Write(ctx, []byte("soon\n"), 4); errno != syscall.EINVAL {
		t.Fatalf("write of an invalid part: %v, want EINVAL", errno)
	}
	if _, errno := h.Write(ctx, []byte("1m\n"), 0); errno != syscall.EINVAL {
		t.Errorf("a write after a refusal: %v, want EINVAL", errno)
	}
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); strings.TrimSpace(v) != "30s" {
		t.Errorf("after the refused part: %q, want 30s put back", v)
	}
	if errno := h.Flush(ctx); errno != 0 {
		t.Errorf("flush of a failed handle: %v, want nothing to do", errno)
	}
	if errno := h.Release(ctx); errno != 0 {
		t.Fatalf("release: %v", errno)
	}
	if used, handles := tr.temps.budget.used(uint32(os.Geteuid())); used != 0 || handles != 0 {
		t.Errorf("after release the budget holds %d bytes in %d handles, want none", used, handles)
	}
	if log := eventLog(t, m, j.ID); !strings.Contains(log, "undone") {
		t.Errorf("the undo is not in the job log:\n%s", log)
	}
}

// `: > config/timeout`: the truncation is stored at Flush, so a read right
// after close sees the default, but logged only at Release, once no value
// followed it.
func TestSettingHandleTruncateLoggedAtRelease(t *testing.T) {
	m, j, root, ctx := adapterJob(t)
	if err := m.WriteSetting(j.ID, "config/timeout", "30s"); err != nil {
		t.Fatal(err)
	}
	in := lookupPath(t, ctx, root, "edited/config/timeout")
	h := openSetting(t, ctx, in, syscall.O_WRONLY|syscall.O_TRUNC)
	if errno := h.Flush(ctx); errno != 0 {
		t.Fatalf("flush: %v", errno)
	}
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); strings.TrimSpace(v) != "1h" {
		t.Errorf("after the flush: %q, want the default 1h", v)
	}
	if log := eventLog(t, m, j.ID); strings.Contains(log, "reset to its default") {
		t.Errorf("the reset is logged before release:\n%s", log)
	}
	var out fuse.AttrOut
	if errno := in.Operations().(gofs.NodeGetattrer).Getattr(ctx, h, &out); errno != 0 || out.Size != 0 {
		t.Errorf("getattr of the open handle: size %d, %v; want 0", out.Size, errno)
	}
	if errno := h.Release(ctx); errno != 0 {
		t.Fatalf("release: %v", errno)
	}
	if log := eventLog(t, m, j.ID); strings.Count(log, "config/timeout reset to its default") != 1 {
		t.Errorf("want the reset logged once at release:\n%s", log)
	}
}

// A share file created (touch) grants viewer at once; a refused role
// written next takes the new share back.
func TestShareHandleCreateUndo(t *testing.T) {
	m, j, root, ctx := adapterJob(t)
	dir := lookupPath(t, ctx, root, "edited/shared").Operations().(*sharedDir)
	var out fuse.EntryOut
	_, fh, _, errno := dir.Create(ctx, "public", syscall.O_WRONLY|syscall.O_CREAT, 0o644, &out)
	if errno != 0 {
		t.Fatalf("create shared/public: %v", errno)
	}
	if s, _ := m.Shares(j.ID); s["public"] != "viewer" {
		t.Fatalf("after create: %v, want public viewer", s)
	}
	h := fh.(*shareHandle)
	if _, errno := h.Write(ctx, []byte("admin\n"), 0); errno != syscall.EINVAL {
		t.Fatalf("write admin: %v, want EINVAL", errno)
	}
	if errno := h.Release(ctx); errno != 0 {
		t.Fatalf("release: %v", errno)
	}
	if s, _ := m.Shares(j.ID); len(s) != 0 {
		t.Errorf("the refused share is still there: %v", s)
	}
}
