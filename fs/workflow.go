package fs

import (
	"context"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// jobCmdFile is MOUNT/JOB/ctl (`stop` or `kill` every active and queued
// run) or MOUNT/JOB/rerun (a run id: run it again with its payload and
// input files). Neither is listed, like stream and wait: tar and cp -r of
// a job pass over them, and tar -x into a new job never tries to create
// them.
type jobCmdFile struct {
	gofs.Inode
	t     *tree
	jobID string
	name  string // "ctl" or "rerun"
}

// fill: runners may write it; it reads empty.
func (f *jobCmdFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, runnerSide, f.t.jobCreated(f.jobID))
	return 0
}

func (f *jobCmdFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *jobCmdFile) Setattr(ctx context.Context, _ gofs.FileHandle, _ *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *jobCmdFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}

func (f *jobCmdFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}

// Open for reading gives an empty file; writing needs the runner role.
func (f *jobCmdFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if isWrite(flags) {
		if errno := f.t.need(ctx, f.jobID, jobs.Runner); errno != 0 {
			return nil, 0, errno
		}
	}
	return &jobCmdHandle{f: f, uid: f.t.callerUID(ctx), holder: f.t.holderOf(ctx, f.jobID)}, fuse.FOPEN_DIRECT_IO, 0
}

type jobCmdHandle struct {
	f      *jobCmdFile
	uid    uint32
	holder shareHolder // a share's holder is checked again at each command
}

func (h *jobCmdHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(nil), 0
}

// Write acts at once: a command is one short line.
func (h *jobCmdHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := h.holder.may(jobs.Runner, h.f.name); errno != 0 {
		return 0, errno
	}
	m, job := h.f.t.m, h.f.jobID
	cmd := strings.TrimSpace(string(data))
	var err error
	switch {
	case h.f.name == "ctl" && (cmd == "stop" || cmd == "kill"):
		m.StopAll(job, cmd == "kill")
	case h.f.name == "ctl":
		err = m.Refuse(job, "ctl", "write stop (every active and queued run: SIGTERM, grace, SIGKILL) or kill (SIGKILL now), not "+quote(cmd))
	default:
		id, ok := jobs.ParseRerun(cmd)
		if !ok {
			err = m.Refuse(job, "rerun", "write the id of a run to run again with its payload and input files, not "+quote(cmd))
			break
		}
		_, err = m.RerunAs(job, id, h.uid)
	}
	if err != nil {
		return 0, toErrno(err)
	}
	return uint32(len(data)), 0
}
