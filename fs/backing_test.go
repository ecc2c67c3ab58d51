package fs

import (
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// fakeOpens answers each Open with the next handle number and the flags
// (and offer) the test put in its queue, as a node's Open would.
type fakeOpens struct {
	fuse.RawFileSystem
	next  uint64
	flags uint32
	offer backingFder
}

func (f *fakeOpens) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	f.next++
	out.Fh = f.next
	out.OpenFlags = f.flags
	if f.offer != nil {
		offers.Store(cancel, f.offer)
	}
	return fuse.OK
}

func (f *fakeOpens) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {}

// fakeBacking is the kernel's table of backing ids.
type fakeBacking struct {
	next int32
	live map[int32]int32 // id -> fd
	err  syscall.Errno   // the answer to the next registration
}

func (k *fakeBacking) RegisterBackingFd(m *fuse.BackingMap) (int32, syscall.Errno) {
	if k.err != 0 {
		return 0, k.err
	}
	k.next++
	k.live[k.next] = m.Fd
	return k.next, 0
}

func (k *fakeBacking) UnregisterBackingFd(id int32) syscall.Errno {
	if _, ok := k.live[id]; !ok {
		return syscall.EINVAL
	}
	delete(k.live, id)
	return 0
}

type fdOffer int

func (o fdOffer) backingFd() (int, bool) { return int(o), o >= 0 }

// TestBackingCounts: a node's backing id is shared by every open of it
// while one holds it and let go with the last of those, whatever order
// the others close in (go-fuse let it go at the close of an open never
// given it: the kernel then refused root's next open, EIO); a cached open
// bars passthrough, a direct one does not; a refusal for one file leaves
// passthrough on, EPERM turns it off.
func TestBackingCounts(t *testing.T) {
	inner := &fakeOpens{RawFileSystem: fuse.NewDefaultRawFileSystem()}
	kernel := &fakeBacking{live: map[int32]int32{}}
	b := newBackingFS(inner)
	b.server = kernel
	open := func(node uint64, flags uint32, offer backingFder) fuse.OpenOut {
		t.Helper()
		inner.flags, inner.offer = flags, offer
		var out fuse.OpenOut
		if st := b.Open(make(chan struct{}), &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: node}}, &out); st != fuse.OK {
			t.Fatalf("open: %v", st)
		}
		return out
	}
	release := func(node uint64, out fuse.OpenOut) {
		b.Release(nil, &fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: node}, Fh: out.Fh})
	}
	passed := func(out fuse.OpenOut) bool { return out.OpenFlags&fuse.FOPEN_PASSTHROUGH != 0 && out.BackingID != 0 }

	// A holder's direct open, root's passed through, the holder's close,
	// root's next open: the same id, still registered.
	holder := open(2, fuse.FOPEN_DIRECT_IO, nil)
	a := open(2, 0, fdOffer(10))
	if passed(holder) || !passed(a) {
		t.Fatalf("holder %+v, root %+v: want the holder's direct and root's passed through", holder, a)
	}
	release(2, holder)
	c := open(2, 0, fdOffer(11))
	if c.BackingID != a.BackingID || kernel.live[a.BackingID] == 0 {
		t.Errorf("root's second open got id %d, the first %d (live %v): want the same, still registered", c.BackingID, a.BackingID, kernel.live)
	}
	// A holder opening beside them is given the id too (the kernel's rule).
	h2 := open(2, fuse.FOPEN_DIRECT_IO, nil)
	if h2.BackingID != a.BackingID {
		t.Errorf("an open beside a passed-through one got id %d, want %d", h2.BackingID, a.BackingID)
	}
	release(2, a)
	release(2, h2)
	if len(kernel.live) != 1 {
		t.Errorf("live ids %v with one open left, want one", kernel.live)
	}
	release(2, c)
	if len(kernel.live) != 0 || len(b.nodes) != 0 || len(b.opens) != 0 {
		t.Errorf("after the last close: live %v, nodes %v, opens %v; want none", kernel.live, b.nodes, b.opens)
	}

	// A cached open bars passthrough until it closes.
	cached := open(3, 0, nil)
	if x := open(3, 0, fdOffer(12)); passed(x) {
		t.Errorf("passed through beside a cached open")
	} else {
		release(3, x)
	}
	release(3, cached)
	if x := open(3, 0, fdOffer(12)); !passed(x) {
		t.Errorf("not passed through once the cached open closed")
	} else {
		release(3, x)
	}

	// One file refused: passthrough stays on; EPERM: off for good.
	kernel.err = syscall.ELOOP
	if x := open(4, 0, fdOffer(13)); passed(x) || b.off {
		t.Errorf("ELOOP: passed %v, off %v; want neither", passed(x), b.off)
	} else {
		release(4, x)
	}
	kernel.err = syscall.EPERM
	if x := open(4, 0, fdOffer(13)); passed(x) || !b.off {
		t.Errorf("EPERM: passed %v, off %v; want off", passed(x), b.off)
	} else {
		release(4, x)
	}
	kernel.err = 0
	if x := open(4, 0, fdOffer(13)); passed(x) {
		t.Errorf("passed through after EPERM turned it off")
	}
	offers.Range(func(k, _ any) bool {
		t.Errorf("an offer was left: %v", k)
		return true
	})
}
