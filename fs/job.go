package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// jobDir is MOUNT/<job>. It holds the job's id only: a rename changes
// nothing here.
type jobDir struct {
	gofs.Inode
	t   *tree
	job jobs.Job
	// fresh: job was just read by the lookup making this node, for its
	// first fill (the lookup's reply) to use instead of reading it again:
	// a stat of MOUNT/<job> among 100,000 is one read of the store.
	fresh bool
}

// jobEntries are the fixed children of a job folder, sorted.
var jobEntries = []fuse.DirEntry{
	{Name: "config", Mode: syscall.S_IFDIR},
	{Name: "data", Mode: syscall.S_IFREG},
	{Name: "description", Mode: syscall.S_IFREG},
	{Name: "input", Mode: syscall.S_IFDIR},
	{Name: "log", Mode: syscall.S_IFREG},
	{Name: "name", Mode: syscall.S_IFREG},
	{Name: "next_run", Mode: syscall.S_IFREG},
	{Name: "runs", Mode: syscall.S_IFDIR},
	{Name: "shared", Mode: syscall.S_IFDIR},
	{Name: "shortname", Mode: syscall.S_IFREG},
}

func (d *jobDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	j := d.job
	if d.fresh {
		d.fresh = false // set only before the node is published (newChild)
	} else {
		var err error
		if j, err = d.t.m.JobByID(d.job.ID); err != nil {
			return toErrno(err)
		}
	}
	if errno := d.t.need(ctx, j.ID, jobs.Viewer); errno != 0 {
		return errno
	}
	d.t.look(ctx, a, j.ID, syscall.S_IFDIR, setting, jobs.Latest(j.Created, d.t.dirs.get(j.ID)))
	return 0
}

func (d *jobDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := d.fill(ctx, &out.Attr); errno != 0 {
		return errno
	}
	d.t.cacheAttr(out)
	return 0
}

func (d *jobDir) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := d.t.attrsByOwner(ctx, d.job.ID, in); errno != 0 {
		return errno
	}
	if errno := d.fill(ctx, &out.Attr); errno != 0 {
		return errno
	}
	d.t.cacheAttr(out)
	return 0
}

func (d *jobDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	if errno := d.t.need(ctx, d.job.ID, jobs.Viewer); errno != 0 {
		return nil, errno
	}
	ents := make([]fuse.DirEntry, len(jobEntries))
	for i, e := range jobEntries {
		e.Ino = ino(d.job.ID, e.Name)
		ents[i] = e
	}
	return dirEntries(d, append(ents, d.temp().entries()...)...), 0
}

func (d *jobDir) temp() tempDir { return tempDir{t: d.t, jobID: d.job.ID} }

func isJobSetting(name string) bool { return name == "description" || name == "name" }

// Rename supports the tools' write-then-rename of description and name.
func (d *jobDir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if errno := d.t.need(ctx, d.job.ID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if newParent.EmbeddedInode() != d.EmbeddedInode() {
		return syscall.EXDEV
	}
	if handled, errno := d.temp().rename(name, newName, isJobSetting); handled {
		d.changed(errno)
		return errno
	}
	return renameRefused(d.t.m.Refuse(d.job.ID, name, "the files of a job folder cannot be renamed"))
}

func (d *jobDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := d.t.need(ctx, d.job.ID, jobs.Viewer); errno != 0 {
		return nil, errno
	}
	id := d.job.ID
	if isJobFile(name) && d.t.temps.unlinkedBy(ctx, id, name) {
		return nil, syscall.ENOENT // removed by this caller, which may now create it (O_EXCL)
	}
	var node attrFiller
	mode := uint32(syscall.S_IFREG)
	switch name {
	case "config":
		node, mode = &configDir{t: d.t, jobID: id, prefix: "config/"}, syscall.S_IFDIR
	case "runs":
		node, mode = &runsDir{t: d.t, jobID: id}, syscall.S_IFDIR
	case "input":
		node, mode = &stageDir{t: d.t, jobID: id}, syscall.S_IFDIR
	case "data":
		node = &dataFile{t: d.t, jobID: id}
	case "shared":
		node, mode = &sharedDir{t: d.t, jobID: id}, syscall.S_IFDIR
	case "description", "name":
		node = &settingFile{t: d.t, jobID: id, path: name}
	case "log":
		node = &logFile{t: d.t, jobID: id, since: d.t.jobCreated(id)}
	case "next_run":
		node = &textFile{t: d.t, jobID: id, content: func() (string, time.Time, error) {
			return stamp(d.t.m.NextRun(id)), jobs.Latest(d.t.jobCreated(id), d.t.m.NextRunChanged(id)), nil
		}}
	case "ctl", "rerun": // unlisted (workflow.go)
		node = &jobCmdFile{t: d.t, jobID: id, name: name}
	case "shortname":
		node = &textFile{t: d.t, jobID: id, content: func() (string, time.Time, error) {
			return id + "\n", d.t.jobCreated(id), nil
		}}
	default:
		return d.temp().lookup(ctx, d.EmbeddedInode(), name, out)
	}
	return newChild(ctx, d.EmbeddedInode(), node, mode, ino(id, name), out)
}

// Unlink of a setting resets it; of a computed file it is accepted and
// changes nothing (see the package doc on removal). Inside a job being
// deleted whole nothing changes (walk.go).
func (d *jobDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := d.t.need(ctx, d.job.ID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if d.temp().unlink(name) {
		d.changed(0)
		return 0
	}
	walking := d.t.walking(ctx, d.job.ID)
	switch name {
	case "description", "name", "data":
		var errno syscall.Errno
		switch {
		case walking: // deleted whole at the job's rmdir, or not at all
		case name == "data":
			errno = d.busy()
		default:
			errno = toErrno(d.t.m.ResetSetting(d.job.ID, name))
		}
		if errno == 0 {
			// To this caller the name is gone until it creates it again, so
			// tar -x and install (unlink, then create with O_EXCL) work.
			d.t.temps.markUnlinked(ctx, d.job.ID, name)
		}
		return errno
	case "log", "shortname", "next_run":
		if walking {
			return 0
		}
		return d.busy()
	}
	if walking {
		return 0
	}
	return syscall.ENOENT
}

// isJobFile reports whether name is a file of the job folder that a tool
// may remove and create again: description, name, data.
func isJobFile(name string) bool { return name == "description" || name == "name" || name == "data" }

// Rmdir of a fixed sub-folder is accepted and changes nothing, so that
// `rm -rf` of a job reaches the rmdir of the job itself.
func (d *jobDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if errno := d.t.need(ctx, d.job.ID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if d.t.walking(ctx, d.job.ID) {
		return 0
	}
	switch name {
	case "config", "runs", "input", "shared":
		return d.busy()
	}
	return syscall.ENOENT
}

func (d *jobDir) busy() syscall.Errno {
	if d.t.m.Busy(d.job.ID) {
		return syscall.EBUSY
	}
	return 0
}

// Create refuses new names: a job folder has a fixed set of files.
func (d *jobDir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if errno := d.t.need(ctx, d.job.ID, jobs.RoleOwner); errno != 0 {
		return nil, nil, 0, errno
	}
	if isJobFile(name) {
		return d.createFile(ctx, name, flags, out)
	}
	in, fh, flags, errno := d.temp().create(ctx, d.EmbeddedInode(), name, mode, out, func() error {
		return d.t.m.Refuse(d.job.ID, name, "no such file in a job folder; jobs hold config/, data, description, input/, name, runs/")
	})
	d.changed(errno)
	return in, fh, flags, errno
}

// createFile opens description, name or data for writing after the caller
// removed it (tar -x, install): a write of the setting, or of a payload.
func (d *jobDir) createFile(ctx context.Context, name string, flags uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	id := d.job.ID
	d.t.temps.created(id, name)
	var node attrFiller = &dataFile{t: d.t, jobID: id}
	if name != "data" {
		node = &settingFile{t: d.t, jobID: id, path: name}
	}
	in, errno := newChild(ctx, d.EmbeddedInode(), node, syscall.S_IFREG, ino(id, name), out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	switch f := in.Operations().(type) {
	case *settingFile:
		h, errno := f.openWrite(ctx, flags|syscall.O_TRUNC)
		return in, h, fuse.FOPEN_DIRECT_IO, errno
	case *dataFile:
		h, fuseFlags, errno := f.Open(ctx, flags|syscall.O_WRONLY)
		return in, h, fuseFlags, errno
	}
	return nil, nil, 0, syscall.EIO // another node holds the file's inode number: a bug
}

// changed dates a change of the folder's entries (a temporary file came
// or went) when errno says it succeeded.
func (d *jobDir) changed(errno syscall.Errno) {
	if errno == 0 {
		d.t.dirs.touch(d.job.ID)
		d.t.invalidateAttr(d.EmbeddedInode()) // its mtime (cache.go)
	}
}

func (d *jobDir) Mkdir(ctx context.Context, name string, _ uint32, _ *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := d.t.need(ctx, d.job.ID, jobs.RoleOwner); errno != 0 {
		return nil, errno
	}
	return nil, toErrno(d.t.m.Refuse(d.job.ID, name, "a job folder has no sub-folders of your own; stage files in input/"))
}
