package fs

import (
	"context"
	"syscall"
)

// Opening a folder below a job checks the caller's role now (current): a
// refusal at opendir reaches ls as an error, where one from Readdir would
// read as an empty folder.

func (d *jobDir) Opendir(ctx context.Context) syscall.Errno { return current(ctx, d.EmbeddedInode()) }
func (d *configDir) Opendir(ctx context.Context) syscall.Errno {
	return current(ctx, d.EmbeddedInode())
}
func (d *envDir) Opendir(ctx context.Context) syscall.Errno { return current(ctx, d.EmbeddedInode()) }
func (d *sharedDir) Opendir(ctx context.Context) syscall.Errno {
	return current(ctx, d.EmbeddedInode())
}
func (d *stageDir) Opendir(ctx context.Context) syscall.Errno { return current(ctx, d.EmbeddedInode()) }
func (d *runsDir) Opendir(ctx context.Context) syscall.Errno  { return current(ctx, d.EmbeddedInode()) }
func (d *runDir) Opendir(ctx context.Context) syscall.Errno   { return current(ctx, d.EmbeddedInode()) }
func (d *stepsDir) Opendir(ctx context.Context) syscall.Errno { return current(ctx, d.EmbeddedInode()) }
func (d *stepDir) Opendir(ctx context.Context) syscall.Errno  { return current(ctx, d.EmbeddedInode()) }
func (d *diskDir) Opendir(ctx context.Context) syscall.Errno  { return current(ctx, d.EmbeddedInode()) }
