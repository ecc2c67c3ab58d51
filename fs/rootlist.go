package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// The top folder's listing, 100,000 names and more (issue 20: `ls MOUNT`
// as fast as a folder on disk). Its open handle serves the names and ids
// the store lists straight into the kernel's buffers: no entry is built
// for a slice of them (go-fuse's list stream copies every entry twice and
// allocates one per READDIR answer), so a listing costs the garbage
// collector three allocations, not 100,000.
//
// On a mount whose entries the kernel keeps (cache.go), the handle also
// asks the kernel to keep the listing (FOPEN_CACHE_DIR, FOPEN_KEEP_CACHE):
// the next `ls` is read from the kernel's cache, which the kernel checks at
// each opendir against the folder's mtime (a GETATTR: its attributes are
// never kept) and drops when they differ. The mtime (rootChanged) moves at
// every change of the listing on such a mount: a job made (its creation is
// the newest), renamed or deleted (dirTimes); a MKDIR, RENAME or RMDIR of
// this mount drops the cache in the kernel besides. A shared mount lists
// each caller's own jobs, so its listing is never kept.

// rootList is an open handle of the top folder.
type rootList struct {
	r      *rootDir
	loaded bool
	owner  jobs.Owner      // whose jobs were listed
	head   []fuse.DirEntry // . .. .jobfs
	names  []string        // the caller's jobs, sorted
	ids    []string        // ids[i] is names[i]'s job
	tail   []fuse.DirEntry // @<owner> folders (a shared mount)
	next   int             // index of the next entry to return
	de     fuse.DirEntry   // the entry Readdirent returns: go-fuse copies it at once
}

func (r *rootDir) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	var fuseFlags uint32
	if r.t.cache {
		fuseFlags = fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	return &rootList{r: r}, fuseFlags, 0
}

// Readdir is the same listing as a stream (for callers without a handle:
// tests that walk the tree in process).
func (r *rootDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	l := &rootList{r: r}
	if errno := l.load(ctx); errno != 0 {
		return nil, errno
	}
	ents := make([]fuse.DirEntry, 0, l.len())
	for i := 0; i < l.len(); i++ {
		ents = append(ents, l.entry(i))
	}
	r.t.m.WarmJobs(l.owner)
	return gofs.NewListDirStream(ents), 0
}

// load reads the listing, at the first READDIR of the handle (or a seek).
func (l *rootList) load(ctx context.Context) syscall.Errno {
	if l.loaded {
		return 0
	}
	t := l.r.t
	owner := t.namespace(ctx)
	names, ids, err := t.m.JobNames(owner)
	if err != nil {
		return toErrno(err)
	}
	head := dotEntries(l.r, 1)
	head = append(head, fuse.DirEntry{Name: dotJobfs, Mode: syscall.S_IFDIR, Ino: ino(dotJobfs)})
	var tail []fuse.DirEntry
	if t.multi {
		owners, err := t.m.OwnersVisibleTo(t.caller(ctx))
		if err != nil {
			return toErrno(err)
		}
		for _, o := range owners {
			name := "@" + jobs.UserName(o)
			tail = append(tail, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: ino(name)})
		}
	}
	l.head, l.names, l.ids, l.tail, l.loaded, l.owner = head, names, ids, tail, true, owner
	return 0
}

func (l *rootList) len() int { return len(l.head) + len(l.names) + len(l.tail) }

// entry is the i-th entry of the listing (i < len).
func (l *rootList) entry(i int) fuse.DirEntry {
	if i < len(l.head) {
		return l.head[i]
	}
	i -= len(l.head)
	if i < len(l.names) {
		return fuse.DirEntry{Name: l.names[i], Mode: syscall.S_IFDIR, Ino: ino(l.ids[i])}
	}
	return l.tail[i-len(l.names)]
}

// Readdirent returns the next entry, nil at the end. Off is the entry's
// index plus one: where a Seekdir resumes after it.
func (l *rootList) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if errno := l.load(ctx); errno != 0 {
		return nil, errno
	}
	if l.next >= l.len() {
		return nil, 0
	}
	l.de = l.entry(l.next)
	l.next++
	l.de.Off = uint64(l.next)
	return &l.de, 0
}

// Seekdir resumes the listing after entry off-1 (0: from the start), as
// telldir and rewinddir ask.
func (l *rootList) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if errno := l.load(ctx); errno != 0 {
		return errno
	}
	if off > uint64(l.len()) {
		return syscall.EINVAL
	}
	l.next = int(off)
	return 0
}

// Releasedir lets the listing go.
func (l *rootList) Releasedir(context.Context, uint32) {
	if l.loaded { // now that it was served: see WarmJobs
		l.r.t.m.WarmJobs(l.owner)
	}
	l.head, l.names, l.ids, l.tail = nil, nil, nil, nil
}
