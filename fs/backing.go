package fs

import (
	"context"
	"log"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// backingFS gives the kernel the backing files of FUSE passthrough in
// go-fuse's place, counting each open by what it was given. go-fuse
// (v2.12.1) counts a node's backing id down at the release of every open
// of the node, also of one never given the id (a share holder's, read
// through the daemon): the id was closed while another open still used
// it, the next open registered a second one, and the kernel refused that
// open beside the first (EBUSY, which cat reports as EIO).
//
// The kernel's rules for one file: an open beside one passed through must
// be passed through too (else EIO), and one passed through is refused
// beside a cached one (ETXTBSY, EIO). So a node is passed through only
// while it has no cached open, and then every later open shares its id
// until the last is released. An open given the id that asked for
// FOPEN_DIRECT_IO still reads and writes through the daemon, but its mmap
// maps the backing file: so a job with a share is never passed through
// (tree.offered), and a share holder is given an id only when the share
// came while root or the owner had the file open passed through.
type backingFS struct {
	fuse.RawFileSystem
	server backingServer // set before the server serves a request

	mu    sync.Mutex
	nodes map[uint64]*nodeBacking // by node id, while it has a counted open
	opens map[openKey]bool        // each counted open: true if given its node's id
	off   bool                    // the kernel refuses backing files: not asked again
}

// backingServer is the part of go-fuse's server that registers backing files.
type backingServer interface {
	RegisterBackingFd(*fuse.BackingMap) (int32, syscall.Errno)
	UnregisterBackingFd(id int32) syscall.Errno
}

// nodeBacking is a node's backing id (0: none) and its counted opens.
type nodeBacking struct {
	id     int32
	backed int // opens given the id
	cached int // opens through the daemon and the page cache (no FOPEN_DIRECT_IO)
}

type openKey struct{ node, fh uint64 }

func newBackingFS(inner fuse.RawFileSystem) *backingFS {
	return &backingFS{RawFileSystem: inner, nodes: map[uint64]*nodeBacking{}, opens: map[openKey]bool{}}
}

func (b *backingFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	offers.Delete(cancel) // none is left, but one would be another request's
	st := b.RawFileSystem.Open(cancel, in, out)
	offer := takeOffer(cancel)
	if st == fuse.OK {
		b.opened(in.NodeId, out, offer)
	}
	return st
}

func (b *backingFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	offers.Delete(cancel)
	st := b.RawFileSystem.Create(cancel, in, name, out)
	offer := takeOffer(cancel)
	if st == fuse.OK {
		b.opened(out.NodeId, &out.OpenOut, offer)
	}
	return st
}

func (b *backingFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	// Counted first: go-fuse gives the handle's number to the next open
	// once its release is done.
	b.released(in.NodeId, in.Fh)
	b.RawFileSystem.Release(cancel, in)
}

// opened counts an open and passes it through when it may. The kernel
// asks for a backing file by ioctl, no disk I/O, so it is asked under mu:
// an id and its count change together.
func (b *backingFS) opened(node uint64, out *fuse.OpenOut, offer backingFder) {
	if out.Fh == 0 {
		return // no handle (go-fuse's number 0): nothing to pass through
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.nodes[node]
	if n == nil {
		n = &nodeBacking{}
		b.nodes[node] = n
	}
	if n.id == 0 && n.cached == 0 && offer != nil && !b.off && b.server != nil {
		if fd, ok := offer.backingFd(); ok {
			id, errno := b.server.RegisterBackingFd(&fuse.BackingMap{Fd: int32(fd)})
			switch errno {
			case 0:
				n.id = id
			case syscall.EPERM, syscall.EOPNOTSUPP, syscall.ENOTTY, syscall.ENOSYS:
				b.off = true
				log.Printf("jobfs: the kernel refuses backing files (%v): files are read through the daemon from now on", errno)
			default:
				// This file only (its file system stacks too deep, say):
				// it is read through the daemon.
			}
		}
	}
	key := openKey{node, out.Fh}
	if n.id == 0 {
		if out.OpenFlags&fuse.FOPEN_DIRECT_IO == 0 {
			n.cached++
			b.opens[key] = false
		} else if n.cached == 0 && n.backed == 0 {
			delete(b.nodes, node) // a direct open is no bar to passing the file through
		}
		return
	}
	out.BackingID = n.id
	out.OpenFlags |= fuse.FOPEN_PASSTHROUGH
	out.OpenFlags &^= fuse.FOPEN_KEEP_CACHE
	n.backed++
	b.opens[key] = true
}

// released uncounts an open and lets its node's id go with the last open
// given it: the kernel let go of its backing file before it sent the
// release.
func (b *backingFS) released(node, fh uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := openKey{node, fh}
	backed, ok := b.opens[key]
	if !ok {
		return
	}
	delete(b.opens, key)
	n := b.nodes[node]
	if backed {
		n.backed--
	} else {
		n.cached--
	}
	if n.backed == 0 && n.id != 0 {
		if errno := b.server.UnregisterBackingFd(n.id); errno != 0 {
			log.Printf("jobfs: letting a backing file go: %v", errno) // the kernel keeps it until unmount
		}
		n.id = 0
	}
	if n.backed == 0 && n.cached == 0 {
		delete(b.nodes, node)
	}
}

// backingFder is a handle the kernel may read (and write) itself: its
// descriptor, or false when the daemon must see each read.
type backingFder interface {
	backingFd() (int, bool)
}

// offers holds the handle a node's Open or Create offers for passthrough
// until backingFS takes it with the answer, by the request's cancel
// channel: go-fuse tells a node no request id, and each request in flight
// has a channel of its own.
var offers sync.Map

// offered offers h, a handle on a file of jobID, for passthrough (see
// backingFS), unless the job has a share, and returns it. Only a node's
// Open or Create, answering a FUSE request, may call it.
func (t *tree) offered(ctx context.Context, jobID string, h backingFder) backingFder {
	if !passthroughOK.Load() || (t.multi && t.m.Shared(jobID)) {
		return h
	}
	if fc, ok := ctx.(*fuse.Context); ok && fc.Cancel != nil {
		offers.Store(fc.Cancel, h)
	}
	return h
}

func takeOffer(cancel <-chan struct{}) backingFder {
	if v, ok := offers.LoadAndDelete(cancel); ok {
		return v.(backingFder)
	}
	return nil
}
