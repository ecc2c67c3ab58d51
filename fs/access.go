package fs

import (
	"context"
	"syscall"
)

// Every node answers access(2) itself (tree.access): go-fuse's default
// answer lets root write everything and reads the group bits by the
// caller's primary group only, so `test -w` as root said yes to a status
// file that refuses every write. There is no default_permissions: the
// kernel asks the daemon (FUSE ACCESS) for access(2) and chdir only; open,
// create and unlink are checked by each node's own handler.

func (r *rootDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return r.t.access(ctx, r, mask)
}

func (d *ownerDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (d *jobDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (d *configDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (f *settingFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (d *envDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (f *envFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (f *dataFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (d *stageDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (f *stagedFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (d *runsDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (l *latestLink) Access(ctx context.Context, mask uint32) syscall.Errno {
	return l.t.access(ctx, l, mask)
}

func (d *runDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (d *stepsDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (d *stepDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (f *textFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (f *logFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (f *streamFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (f *waitFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (f *ctlFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (d *diskDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (f *diskFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (o *diskOther) Access(ctx context.Context, mask uint32) syscall.Errno {
	return o.t.access(ctx, o, mask)
}

func (d *sharedDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}

func (f *shareFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

func (f *tempFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}
