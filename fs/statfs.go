package fs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// nameMax is the longest name any folder of the tree takes (NAME_MAX), as
// the state folder's filesystem does: a staged file's name is a name there.
const nameMax = 255

// statfs answers statfs(2) on any node alike: the state folder's
// filesystem holds everything the tree stores (runs, staged input, the
// store), so its sizes are what `df` should show anywhere in the mount.
// Without it go-fuse answers zeros, and NAME_MAX 0, below the root.
func (t *tree) statfs(out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := t.m.Statfs(&st); err != nil {
		return toErrno(err)
	}
	out.FromStatfsT(&st)
	out.NameLen = nameMax
	return 0
}

// Every node answers statfs; the list must name each node type (a new
// type without Statfs shows zeros: the unit test in statfs_test.go lists
// them).

func (r *rootDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return r.t.statfs(out)
}
func (d *ownerDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.t.statfs(out)
}
func (d *jobDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno { return d.t.statfs(out) }
func (d *configDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.t.statfs(out)
}
func (f *settingFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (d *envDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno { return d.t.statfs(out) }
func (f *envFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (f *dataFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (d *stageDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.t.statfs(out)
}
func (f *stagedFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (d *runsDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.t.statfs(out)
}
func (l *latestLink) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return l.t.statfs(out)
}
func (d *runDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno { return d.t.statfs(out) }
func (d *stepsDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.t.statfs(out)
}
func (d *stepDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.t.statfs(out)
}
func (f *textFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (f *logFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (f *streamFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (f *waitFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (f *ctlFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (d *diskDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.t.statfs(out)
}
func (f *diskFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (o *diskOther) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return o.t.statfs(out)
}
func (d *sharedDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.t.statfs(out)
}
func (f *shareFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (f *tempFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
