package fs

import (
	"context"
	"sync"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// Kernel caching (issue 20: a stat of a job folder in microseconds, not a
// LOOKUP and a GETATTR through the daemon each time).
//
// What is cached: the entry of a job's name in the mount's top folder (name
// -> the job folder's inode) and the job folder's attributes, for cacheTTL,
// on a single-user mount of a store no other daemon shares (tree.cache).
// Everything else keeps timeout 0 and is asked every time: run folders and
// files (live: a status, a log's size, runs/latest change behind the
// kernel's back), config files, and negative entries (a job made by the
// CLI or another shell shows at once).
//
// Why that is exact:
//   - A job folder's attributes on a single-user mount are its fixed mode
//     and owner, nlink 2, and an mtime of Latest(creation, dirTimes of the
//     job): the creation never changes, and dirTimes changes only when a
//     temporary file comes or goes in the folder, through a CREATE,
//     UNLINK or RENAME of this mount in that folder, after which the kernel
//     drops the folder's attributes itself (fuse_dir_changed); jobDir.changed
//     also invalidates them (FUSE_NOTIFY_INVAL_INODE), which bumps the
//     inode's attribute version so a GETATTR answered concurrently with the
//     old time is not kept either.
//   - A job's name is made, renamed and removed only by MKDIR, RENAME and
//     RMDIR of this mount's top folder on a single-user mount (package jobs
//     has no other caller of CreateJob, RenameJob, DeleteJob), which the
//     kernel applies to its dentries itself. Any other route (a future one)
//     commits through the store, whose change feed watchStore follows: a
//     job created, renamed or deleted there has its old name invalidated
//     (FUSE_NOTIFY_INVAL_ENTRY) and its attributes dropped, asynchronously
//     (a notify of an entry waits for the folder's lock, which the kernel
//     holds while a request of that folder is answered, so it is never sent
//     from a request's handler).
//   - On a shared mount (allow_other) a name in the top folder means a
//     different job for each caller and a job folder's mode bits say what the
//     caller may do, while the kernel's cache is one for all callers: nothing
//     is cached there. With a cluster store (etcd), another daemon's change
//     reaches this one only through the store's watch, later than a read of
//     the store would see it: nothing is cached there either.
//
// cacheTTL bounds how long an answer whose invalidation went missing could
// live; invalidation, not the timeout, is what keeps answers true.
const cacheTTL = 30 * time.Second

// cacheable reports whether this mount may let the kernel keep job
// entries and attributes (see above).
func cacheable(m *jobs.Manager, multi bool) bool {
	if multi {
		return false
	}
	_, shared := m.Store().(jobs.Cluster) // etcdstore: other daemons write it too
	return !shared
}

// cacheEntry lets the kernel keep the entry and attributes of a lookup's
// answer for a job folder.
func (t *tree) cacheEntry(out *fuse.EntryOut) {
	if t.cache {
		out.SetEntryTimeout(cacheTTL)
		out.SetAttrTimeout(cacheTTL)
	}
}

// cacheAttr lets the kernel keep a job folder's attributes.
func (t *tree) cacheAttr(out *fuse.AttrOut) {
	if t.cache {
		out.SetTimeout(cacheTTL)
	}
}

// jobNames remembers, by job id, the name under which the kernel was last
// given each job folder (a lookup, a mkdir, a rename through the mount),
// for the invalidations of watchStore: the store's change feed names a
// job by id only, and a deleted job's name can no longer be read. An
// entry goes when go-fuse forgets the folder's inode (jobDir.OnForget) or
// the job is deleted through the mount.
type jobNames struct {
	mu sync.Mutex
	m  map[string]string // job id -> name in the top folder
}

func (r *jobNames) set(id, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]string{}
	}
	r.m[id] = name
}

func (r *jobNames) drop(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}

func (r *jobNames) get(id string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name, ok := r.m[id]
	return name, ok
}

func (r *jobNames) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.m))
	for id := range r.m {
		out = append(out, id)
	}
	return out
}

// OnForget: the kernel holds no reference to the folder any more, so it
// keeps nothing of it to invalidate.
func (d *jobDir) OnForget() {
	if d.t.cache {
		d.t.names.drop(d.job.ID)
	}
}

// invalidateJob makes the kernel forget what it keeps of job id's folder:
// the entry of its name and its attributes. It must not run in a
// request's handler (see above).
func (t *tree) invalidateJob(id string) {
	name, ok := t.names.get(id)
	if !ok {
		return // never given to the kernel, or forgotten: nothing kept
	}
	top := t.top.EmbeddedInode()
	// Errors are dropped on purpose: ENOENT says the kernel no longer
	// holds the inode or entry, which is what was asked.
	if child := top.GetChild(name); child != nil && child.StableAttr().Ino == ino(id) {
		_ = child.NotifyContent(-1, 0) // attributes only: a folder has no cached pages
	}
	_ = top.NotifyEntry(name)
}

// jobChanged is watchStore's answer to a change of job id's record. When
// the store still has the job under the name the kernel was given (a
// mkdir or rename through this mount, which the kernel applied itself),
// what the kernel keeps is true: the entry, and the folder's attributes
// (a job's mode, owner and creation never change; its mtime moves with
// temporary files, which jobDir.changed invalidates). Nothing is sent
// then: an entry's invalidation also drops the top folder's kept listing
// (the kernel counts it as a change of the folder), and an attribute's
// the stat after it, so each mkdir cost the next `ls` a full READDIR and
// the next stat a GETATTR, whenever the feed arrived after them.
func (t *tree) jobChanged(id string) {
	if name, ok := t.names.get(id); ok {
		if j, err := t.m.JobByID(id); err == nil && j.Name == name {
			return
		}
	}
	t.invalidateJob(id) // nothing when the kernel was never given the job
}

// invalidateAll is invalidateJob of every job folder the kernel may hold:
// after the change feed lagged, when which jobs changed is not known.
func (t *tree) invalidateAll() {
	for _, id := range t.names.ids() {
		t.invalidateJob(id)
	}
}

// watchStore follows the store's change feed until the Manager closes and
// invalidates the job folders whose name or existence changed (a job
// created, renamed or deleted by any route). A feed that lagged and was
// closed is watched anew, after invalidating everything.
func (t *tree) watchStore() {
	closing := t.m.Closing()
	for {
		ctx, cancel := context.WithCancel(context.Background())
		feed := t.m.Store().Watch(ctx)
		for c := range feed {
			if c.Run == 0 && (c.Key == "" || c.Key == "meta") {
				t.jobChanged(c.Job)
			}
		}
		cancel()
		select {
		case <-closing:
			return
		case <-time.After(10 * time.Millisecond): // a closed store closes every feed at once: no spin
		}
		t.invalidateAll()
	}
}

// invalidateAttr drops the kernel's attributes of in: the answer changed
// by a route the kernel does not see as a change of in itself. Safe in a
// request's handler (FUSE_NOTIFY_INVAL_INODE takes no folder lock).
func (t *tree) invalidateAttr(in *gofs.Inode) {
	if t.cache {
		_ = in.NotifyContent(-1, 0) // ENOENT: the kernel holds nothing of it
	}
}
