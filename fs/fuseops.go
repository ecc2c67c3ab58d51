package fs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// countingFS counts every FUSE request the mount answers, by operation and
// errno (0 for success), through count: a counter increment per request.
// Forget, Release and ReleaseDir have no answer to count; every request
// passes through as it is. (Generated from go-fuse's RawFileSystem.)
type countingFS struct {
	fuse.RawFileSystem
	count func(op string, errno int)
}

// tooLong answers ENAMETOOLONG to a request naming a name longer than
// nameMax (statfs.go), as ext4 does: the kernel leaves names up to FUSE's
// own 1024 bytes to the file system. Job names have a shorter rule of
// their own (jobs.CheckJobName), whose refusal is EINVAL with its reason.
func (c *countingFS) tooLong(op string, names ...string) (fuse.Status, bool) {
	for _, n := range names {
		if len(n) > nameMax {
			return c.done(op, fuse.Status(syscall.ENAMETOOLONG)), true
		}
	}
	return fuse.OK, false
}

// done counts an answer and returns it.
func (c *countingFS) done(op string, st fuse.Status) fuse.Status {
	c.count(op, int(st))
	return st
}

func (c *countingFS) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	if st, ok := c.tooLong("lookup", name); ok {
		return st
	}
	return c.done("lookup", c.RawFileSystem.Lookup(cancel, header, name, out))
}

func (c *countingFS) GetAttr(cancel <-chan struct{}, input *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	return c.done("getattr", c.RawFileSystem.GetAttr(cancel, input, out))
}

// SetAttr answers with the node's inode number, which go-fuse fills in
// GETATTR's and LOOKUP's answers but not in SETATTR's: the kernel takes
// every attribute answer's number as the inode's, so a truncating open
// (the shell's >, Python's "w") renumbered data 0, in stat and in
// /proc/PID/fdinfo, where the close of data looks for who still holds it
// (jobs.ProcWriters): a child that still wrote was not seen, and its
// payload was judged at the parent's close. The number comes from the
// node's GETATTR.
func (c *countingFS) SetAttr(cancel <-chan struct{}, input *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	st := c.RawFileSystem.SetAttr(cancel, input, out)
	if st == fuse.OK && out.Ino == 0 {
		var attr fuse.AttrOut
		if c.RawFileSystem.GetAttr(cancel, &fuse.GetAttrIn{InHeader: input.InHeader}, &attr) == fuse.OK {
			out.Ino = attr.Ino
		}
	}
	return c.done("setattr", st)
}

func (c *countingFS) Mknod(cancel <-chan struct{}, input *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	if st, ok := c.tooLong("mknod", name); ok {
		return st
	}
	return c.done("mknod", c.RawFileSystem.Mknod(cancel, input, name, out))
}

func (c *countingFS) Mkdir(cancel <-chan struct{}, input *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	if st, ok := c.tooLong("mkdir", name); ok {
		return st
	}
	return c.done("mkdir", c.RawFileSystem.Mkdir(cancel, input, name, out))
}

func (c *countingFS) Unlink(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	return c.done("unlink", c.RawFileSystem.Unlink(cancel, header, name))
}

func (c *countingFS) Rmdir(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	return c.done("rmdir", c.RawFileSystem.Rmdir(cancel, header, name))
}

func (c *countingFS) Rename(cancel <-chan struct{}, input *fuse.RenameIn, oldName string, newName string) fuse.Status {
	if st, ok := c.tooLong("rename", oldName, newName); ok {
		return st
	}
	return c.done("rename", c.RawFileSystem.Rename(cancel, input, oldName, newName))
}

func (c *countingFS) Link(cancel <-chan struct{}, input *fuse.LinkIn, filename string, out *fuse.EntryOut) fuse.Status {
	if st, ok := c.tooLong("link", filename); ok {
		return st
	}
	return c.done("link", c.RawFileSystem.Link(cancel, input, filename, out))
}

func (c *countingFS) Symlink(cancel <-chan struct{}, header *fuse.InHeader, pointedTo string, linkName string, out *fuse.EntryOut) fuse.Status {
	if st, ok := c.tooLong("symlink", linkName); ok {
		return st
	}
	return c.done("symlink", c.RawFileSystem.Symlink(cancel, header, pointedTo, linkName, out))
}

func (c *countingFS) Readlink(cancel <-chan struct{}, header *fuse.InHeader) ([]byte, fuse.Status) {
	v, st := c.RawFileSystem.Readlink(cancel, header)
	return v, c.done("readlink", st)
}

func (c *countingFS) Access(cancel <-chan struct{}, input *fuse.AccessIn) fuse.Status {
	return c.done("access", c.RawFileSystem.Access(cancel, input))
}

func (c *countingFS) GetXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	v, st := c.RawFileSystem.GetXAttr(cancel, header, attr, dest)
	return v, c.done("getxattr", st)
}

func (c *countingFS) ListXAttr(cancel <-chan struct{}, header *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	v, st := c.RawFileSystem.ListXAttr(cancel, header, dest)
	return v, c.done("listxattr", st)
}

func (c *countingFS) SetXAttr(cancel <-chan struct{}, input *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return c.done("setxattr", c.RawFileSystem.SetXAttr(cancel, input, attr, data))
}

func (c *countingFS) RemoveXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string) fuse.Status {
	return c.done("removexattr", c.RawFileSystem.RemoveXAttr(cancel, header, attr))
}

func (c *countingFS) Create(cancel <-chan struct{}, input *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	if st, ok := c.tooLong("create", name); ok {
		return st
	}
	return c.done("create", c.RawFileSystem.Create(cancel, input, name, out))
}

func (c *countingFS) Tmpfile(cancel <-chan struct{}, input *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	return c.done("tmpfile", c.RawFileSystem.Tmpfile(cancel, input, out))
}

func (c *countingFS) Open(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return c.done("open", c.RawFileSystem.Open(cancel, input, out))
}

func (c *countingFS) Read(cancel <-chan struct{}, input *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	v, st := c.RawFileSystem.Read(cancel, input, buf)
	return v, c.done("read", st)
}

func (c *countingFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	return c.done("lseek", c.RawFileSystem.Lseek(cancel, in, out))
}

func (c *countingFS) GetLk(cancel <-chan struct{}, input *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	return c.done("getlk", c.RawFileSystem.GetLk(cancel, input, out))
}

func (c *countingFS) SetLk(cancel <-chan struct{}, input *fuse.LkIn) fuse.Status {
	return c.done("setlk", c.RawFileSystem.SetLk(cancel, input))
}

func (c *countingFS) SetLkw(cancel <-chan struct{}, input *fuse.LkIn) fuse.Status {
	return c.done("setlkw", c.RawFileSystem.SetLkw(cancel, input))
}

func (c *countingFS) Write(cancel <-chan struct{}, input *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	v, st := c.RawFileSystem.Write(cancel, input, data)
	return v, c.done("write", st)
}

func (c *countingFS) Writev(cancel <-chan struct{}, input *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	v, st := c.RawFileSystem.Writev(cancel, input, data)
	return v, c.done("writev", st)
}

func (c *countingFS) CopyFileRange(cancel <-chan struct{}, input *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	v, st := c.RawFileSystem.CopyFileRange(cancel, input)
	return v, c.done("copyfilerange", st)
}

func (c *countingFS) Ioctl(cancel <-chan struct{}, input *fuse.IoctlIn, inbuf []byte, output *fuse.IoctlOut, outbuf []byte) fuse.Status {
	return c.done("ioctl", c.RawFileSystem.Ioctl(cancel, input, inbuf, output, outbuf))
}

func (c *countingFS) Flush(cancel <-chan struct{}, input *fuse.FlushIn) fuse.Status {
	return c.done("flush", c.RawFileSystem.Flush(cancel, input))
}

func (c *countingFS) Fsync(cancel <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	return c.done("fsync", c.RawFileSystem.Fsync(cancel, input))
}

func (c *countingFS) Fallocate(cancel <-chan struct{}, input *fuse.FallocateIn) fuse.Status {
	return c.done("fallocate", c.RawFileSystem.Fallocate(cancel, input))
}

func (c *countingFS) OpenDir(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return c.done("opendir", c.RawFileSystem.OpenDir(cancel, input, out))
}

func (c *countingFS) ReadDir(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return c.done("readdir", c.RawFileSystem.ReadDir(cancel, input, out))
}

func (c *countingFS) ReadDirPlus(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return c.done("readdirplus", c.RawFileSystem.ReadDirPlus(cancel, input, out))
}

func (c *countingFS) FsyncDir(cancel <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	return c.done("fsyncdir", c.RawFileSystem.FsyncDir(cancel, input))
}

func (c *countingFS) StatFs(cancel <-chan struct{}, input *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	return c.done("statfs", c.RawFileSystem.StatFs(cancel, input, out))
}

func (c *countingFS) Statx(cancel <-chan struct{}, input *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	return c.done("statx", c.RawFileSystem.Statx(cancel, input, out))
}
