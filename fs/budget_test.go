package fs

import (
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// testTree is a tree on a real Manager in a temporary state folder, with
// one job "j" of the test's own user.
func testTree(t *testing.T) (*tree, jobs.Job) {
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
	owner := jobs.Owner(os.Geteuid())
	j, err := m.CreateJob(owner, "j")
	if err != nil {
		t.Fatal(err)
	}
	return newTree(m, owner), j
}

// jobLog returns the job's event log.
func jobLog(t *testing.T, tr *tree, j jobs.Job) string {
	t.Helper()
	b, err := os.ReadFile(tr.m.JobLogPath(j.ID))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if got := toErrno(err); got != want {
		t.Errorf("%s: errno %v (%v), want %v", what, got, err, want)
	}
}

func TestBudgetReserveRelease(t *testing.T) {
	b := &budget{userBytes: 100, totalBytes: 150}
	if err := b.reserve(1, 100); err != nil {
		t.Fatal(err)
	}
	err := b.reserve(1, 1)
	wantErrno(t, "past the user's bytes", err, syscall.ENOSPC)
	if err == nil || !strings.Contains(err.Error(), "uid 1 already buffers 100 bytes") {
		t.Errorf("reason %q does not say whose budget is spent", err)
	}
	if err := b.reserve(2, 50); err != nil {
		t.Fatal(err)
	}
	err = b.reserve(3, 1)
	wantErrno(t, "past all users' bytes", err, syscall.ENOSPC)
	if err == nil || !strings.Contains(err.Error(), "for all users") {
		t.Errorf("reason %q does not name the total", err)
	}
	b.release(1, 100)
	b.release(2, 50)
	if n, _ := b.used(1); n != 0 || b.total != 0 || len(b.bytes) != 0 {
		t.Errorf("after release: uid 1 %d, total %d, map %v", n, b.total, b.bytes)
	}
}

func TestBudgetHandles(t *testing.T) {
	b := &budget{userHandles: 2}
	for i := 0; i < 2; i++ {
		if err := b.open(7); err != nil {
			t.Fatal(err)
		}
	}
	wantErrno(t, "third handle", b.open(7), syscall.EMFILE)
	if err := b.open(8); err != nil {
		t.Errorf("another user's handle: %v", err)
	}
	b.close(7)
	if err := b.open(7); err != nil {
		t.Errorf("after a close: %v", err)
	}
}

// A buffer charges its capacity, grows by at most an eighth plus a step,
// and gives everything back when freed.
func TestBufferGrowth(t *testing.T) {
	b := &budget{}
	c := buffer{b: b, uid: 1, limit: 16 << 20, what: "a payload"}
	chunk := make([]byte, 1<<20)
	for i := range 15 {
		chunk[0] = byte(i + 1)
		if err := c.write(chunk, int64(i)<<20); err != nil {
			t.Fatal(err)
		}
		charged, _ := b.used(1)
		if charged != int64(cap(c.data)) {
			t.Fatalf("charged %d, capacity %d", charged, cap(c.data))
		}
		if size := len(c.data); cap(c.data) > size+size/8+growStep {
			t.Fatalf("capacity %d for %d bytes", cap(c.data), size)
		}
	}
	if len(c.data) != 15<<20 || c.data[14<<20] != 15 || c.data[1] != 0 {
		t.Fatalf("content: len %d, byte at 14 MiB %d", len(c.data), c.data[14<<20])
	}
	c.free()
	if charged, _ := b.used(1); charged != 0 || c.data != nil {
		t.Errorf("after free: charged %d", charged)
	}
}

// A shrink then a regrowth within the capacity reads zeros, not the old
// bytes; a large shrink gives memory back.
func TestBufferTruncate(t *testing.T) {
	b := &budget{}
	c := buffer{b: b, uid: 1, limit: 16 << 20, what: "a temporary file"}
	if err := c.write([]byte("secret"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.truncate(1); err != nil {
		t.Fatal(err)
	}
	if err := c.truncate(6); err != nil {
		t.Fatal(err)
	}
	if string(c.data) != "s\x00\x00\x00\x00\x00" {
		t.Errorf("after shrink and grow: %q", c.data)
	}
	if err := c.truncate(8 << 20); err != nil {
		t.Fatal(err)
	}
	if err := c.truncate(100); err != nil {
		t.Fatal(err)
	}
	if charged, _ := b.used(1); charged != int64(cap(c.data)) || charged > growStep {
		t.Errorf("after shrinking 8 MiB to 100 bytes: %d charged, capacity %d", charged, cap(c.data))
	}
}

// Sizes past the cap, up to 2^64-1, are EFBIG and allocate nothing;
// offsets that overflow are refused, not a panic.
func TestBufferTooLarge(t *testing.T) {
	b := &budget{}
	c := buffer{b: b, uid: 1, limit: 16 << 20, what: "a temporary file"}
	for _, size := range []uint64{16<<20 + 1, 1 << 30, math.MaxInt64, math.MaxUint64} {
		err := c.truncate(size)
		wantErrno(t, "truncate", err, syscall.EFBIG)
		if err != nil && !strings.Contains(err.Error(), "a temporary file is at most 16 MiB") {
			t.Errorf("reason %q", err)
		}
	}
	for _, off := range []int64{-1, 16 << 20, math.MaxInt64 - 1, math.MaxInt64} {
		wantErrno(t, "write", c.write([]byte("ab"), off), syscall.EFBIG)
	}
	if charged, _ := b.used(1); charged != 0 || c.data != nil {
		t.Errorf("a refusal charged %d bytes", charged)
	}
	if err := c.truncate(16 << 20); err != nil {
		t.Errorf("exactly the cap: %v", err)
	}
}

// Past the user's budget a buffer may still grow to exactly its size,
// without the slack; beyond that it is ENOSPC and keeps its content.
func TestBufferBudget(t *testing.T) {
	b := &budget{userBytes: 1 << 20}
	c := buffer{b: b, uid: 1, limit: 16 << 20, what: "a payload"}
	if err := c.truncate(1 << 20); err != nil {
		t.Fatalf("exactly the budget: %v", err)
	}
	wantErrno(t, "one byte more", c.write([]byte("x"), 1<<20), syscall.ENOSPC)
	if len(c.data) != 1<<20 {
		t.Errorf("a refused write changed the size to %d", len(c.data))
	}
}

func setSize(size uint64) *fuse.SetAttrIn {
	in := &fuse.SetAttrIn{}
	in.Valid = fuse.FATTR_SIZE
	in.Size = size
	return in
}

// The case: ftruncate to 2^63-1 on an editor's swap file panicked
// with the file's lock held, and every later stat hung. Now it is EFBIG
// with a reason line, the lock is free and the file unchanged.
func TestTempHugeTruncate(t *testing.T) {
	tr, j := testTree(t)
	ctx := context.Background()
	dir := tempDir{t: tr, jobID: j.ID, dir: "config/"}
	td, err := tr.temps.newData(dir.owner(), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	tr.temps.put(j.ID, "config/.script.swp", td)
	f := &tempFile{t: tr, jobID: j.ID, path: "config/.script.swp"}
	h, err := f.open(ctx, td)
	if err != nil {
		t.Fatal(err)
	}
	if _, errno := h.Write(ctx, []byte("abc"), 0); errno != 0 {
		t.Fatal(errno)
	}
	for _, size := range []uint64{math.MaxInt64, math.MaxUint64, 1 << 30} {
		var out fuse.AttrOut
		if errno := f.Setattr(ctx, nil, setSize(size), &out); errno != syscall.EFBIG {
			t.Errorf("truncate to %d: %v, want EFBIG", size, errno)
		}
		if errno := f.Setattr(ctx, h, setSize(size), &out); errno != syscall.EFBIG {
			t.Errorf("ftruncate to %d: %v, want EFBIG", size, errno)
		}
	}
	if !td.mu.TryLock() {
		t.Fatal("the file's lock is held after the refusal")
	}
	td.mu.Unlock()
	var out fuse.AttrOut
	if errno := f.Getattr(ctx, nil, &out); errno != 0 || out.Size != 3 {
		t.Errorf("stat after the refusal: %v, size %d, want 3", errno, out.Size)
	}
	if log := jobLog(t, tr, j); !strings.Contains(log, "config/.script.swp rejected: a temporary file is at most 16 MiB") {
		t.Errorf("no reason line in the job log:\n%s", log)
	}
	h.Release(ctx)
	if !tr.temps.remove(j.ID, "config/.script.swp") {
		t.Fatal("the file was not there")
	}
	if n, handles := tr.temps.budget.used(dir.owner()); n != 0 || handles != 0 {
		t.Errorf("after remove: %d bytes, %d handles still charged", n, handles)
	}
}

// A removed temporary file keeps its content for a handle still open; the
// last Release gives the memory back. Renames move the charge with the file.
func TestTempRemoveWhileOpen(t *testing.T) {
	tr, j := testTree(t)
	ctx := context.Background()
	dir := tempDir{t: tr, jobID: j.ID, dir: "config/"}
	uid := dir.owner()
	td, err := tr.temps.newData(uid, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	tr.temps.put(j.ID, "config/script~", td)
	f := &tempFile{t: tr, jobID: j.ID, path: "config/script~"}
	h, err := f.open(ctx, td)
	if err != nil {
		t.Fatal(err)
	}
	if handled, errno := dir.rename("script~", ".script.swp", func(string) bool { return false }); !handled || errno != 0 {
		t.Fatalf("rename temp to temp: %v %v", handled, errno)
	}
	if tr.temps.get(j.ID, "config/.script.swp") != td || td.gone {
		t.Fatal("the renamed file is not the same, or was removed")
	}
	if !dir.unlink(".script.swp") {
		t.Fatal("unlink: not found")
	}
	if _, errno := h.Write(ctx, make([]byte, 1<<20), 0); errno != 0 {
		t.Fatalf("write to the removed, open file: %v", errno)
	}
	if n, _ := tr.temps.budget.used(uid); n < 1<<20 {
		t.Errorf("%d bytes charged while the removed file is open", n)
	}
	h.Release(ctx)
	h.Release(ctx) // a second Release changes nothing
	if n, handles := tr.temps.budget.used(uid); n != 0 || handles != 0 {
		t.Errorf("after the last release: %d bytes, %d handles charged", n, handles)
	}
}

// Data handles: each is counted, a payload grows the writer's budget, and
// past it the write is ENOSPC with a reason line; Release gives it all back.
func TestDataHandleBudget(t *testing.T) {
	tr, j := testTree(t)
	tr.temps.budget = budget{userBytes: 40 << 20, userHandles: 4}
	// A job that can start: a trigger of one that cannot is refused at
	// the first write, before the budget is asked.
	for path, v := range map[string]string{"config/type": "script", "config/script": "#!/bin/sh\n"} {
		if err := tr.m.WriteSetting(j.ID, path, v); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	f := &dataFile{t: tr, jobID: j.ID}
	uid := tr.owner
	var hs []*dataHandle
	for i := 0; i < 4; i++ {
		fh, _, errno := f.Open(ctx, syscall.O_WRONLY)
		if errno != 0 {
			t.Fatal(errno)
		}
		hs = append(hs, fh.(*dataHandle))
	}
	if _, _, errno := f.Open(ctx, syscall.O_WRONLY); errno != syscall.EMFILE {
		t.Errorf("fifth handle: %v, want EMFILE", errno)
	}
	if _, _, errno := f.Open(ctx, syscall.O_RDONLY); errno != 0 {
		t.Errorf("a reading handle is not counted: %v", errno)
	}
	chunk := []byte(`"` + strings.Repeat("a", 1<<20-1))
	var errnos []syscall.Errno
	for _, h := range hs {
		var errno syscall.Errno
		for off := 0; off < 15<<20 && errno == 0; off += len(chunk) {
			_, errno = h.Write(ctx, chunk, int64(off))
			chunk[0] = 'a'
		}
		chunk[0] = '"'
		errnos = append(errnos, errno)
	}
	if want := []syscall.Errno{0, 0, syscall.ENOSPC, syscall.ENOSPC}; !slices.Equal(errnos, want) {
		t.Errorf("15 MiB into 4 handles with 40 MiB: %v, want %v", errnos, want)
	}
	if n, _ := tr.temps.budget.used(uid); n > 40<<20 {
		t.Errorf("%d bytes charged, over the 40 MiB budget", n)
	}
	if log := jobLog(t, tr, j); !strings.Contains(log, "data rejected: uid ") || !strings.Contains(log, "files of jobfs open for writing") {
		t.Errorf("the job log lacks the reason lines:\n%s", log)
	}
	for _, h := range hs {
		h.Release(ctx)
	}
	if n, handles := tr.temps.budget.used(uid); n != 0 || handles != 0 {
		t.Errorf("after release: %d bytes, %d handles", n, handles)
	}
}

func TestLimitErrorIsErrno(t *testing.T) {
	err := error(&limitError{syscall.EMFILE, "x"})
	if !errors.Is(err, syscall.EMFILE) || toErrno(err) != syscall.EMFILE {
		t.Errorf("limitError does not unwrap to its errno")
	}
}

// A create refused by the budget (EMFILE, ENOSPC) leaves no file, no
// count and a reason line.
func TestTempCreateRefused(t *testing.T) {
	tr, j := testTree(t)
	ctx := context.Background()
	dir := tempDir{t: tr, jobID: j.ID, dir: "config/"}
	var out fuse.EntryOut
	tr.temps.budget = budget{userHandles: 1}
	if err := tr.temps.budget.open(tr.owner); err != nil {
		t.Fatal(err)
	}
	if _, _, _, errno := dir.create(ctx, nil, ".a.swp", 0o600, &out, nil); errno != syscall.EMFILE {
		t.Errorf("create past the handles: %v, want EMFILE", errno)
	}
	tr.temps.budget = budget{userBytes: tempOverhead - 1}
	if _, _, _, errno := dir.create(ctx, nil, ".b.swp", 0o600, &out, nil); errno != syscall.ENOSPC {
		t.Errorf("create past the bytes: %v, want ENOSPC", errno)
	}
	if names := tr.temps.list(j.ID, "config/"); len(names) != 0 {
		t.Errorf("refused creates left %v", names)
	}
	if n, handles := tr.temps.budget.used(tr.owner); n != 0 || handles != 0 {
		t.Errorf("refused creates left %d bytes, %d handles charged", n, handles)
	}
	log := jobLog(t, tr, j)
	for _, want := range []string{"config/.a.swp rejected: uid ", "config/.b.swp rejected: uid "} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q:\n%s", want, log)
		}
	}
}
