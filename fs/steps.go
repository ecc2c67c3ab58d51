package fs

import (
	"context"
	"strconv"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// stepsDir is runs/<id>/steps: one folder per step of the run.
type stepsDir struct {
	gofs.Inode
	t     *tree
	jobID string
	id    uint64
}

func (d *stepsDir) seed(parts ...string) uint64 {
	return ino(append([]string{d.jobID, "runs", strconv.FormatUint(d.id, 10), "steps"}, parts...)...)
}

func (d *stepsDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	r, err := d.t.m.Run(d.jobID, d.id)
	if err != nil {
		return toErrno(err)
	}
	d.t.look(ctx, a, d.jobID, syscall.S_IFDIR, computed, stepsChanged(r))
	return 0
}

func (d *stepsDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *stepsDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	r, err := d.t.m.Run(d.jobID, d.id)
	if err != nil {
		return nil, toErrno(err)
	}
	var ents []fuse.DirEntry
	for _, s := range r.Steps {
		ents = append(ents, fuse.DirEntry{Name: s.Label, Mode: syscall.S_IFDIR, Ino: d.seed(s.Label)})
	}
	return dirEntries(d, ents...), 0
}

func (d *stepsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	r, err := d.t.m.Run(d.jobID, d.id)
	if err != nil {
		return nil, toErrno(err)
	}
	if _, ok := r.Step(name); !ok {
		return nil, syscall.ENOENT
	}
	node := &stepDir{t: d.t, jobID: d.jobID, id: d.id, label: name, seed: d.seed(name)}
	return newChild(ctx, d.EmbeddedInode(), node, syscall.S_IFDIR, d.seed(name), out)
}

// Unlink and Rmdir change nothing (rm -rf of a run); only the owner is
// told they succeeded.
func (d *stepsDir) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.t.need(ctx, d.jobID, jobs.RoleOwner)
}

func (d *stepsDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	return d.t.need(ctx, d.jobID, jobs.RoleOwner)
}

// stepDir is runs/<id>/steps/<label>.
type stepDir struct {
	gofs.Inode
	t     *tree
	jobID string
	id    uint64
	label string
	seed  uint64
}

var stepEntries = []string{"ended_at", "error", "exit_code", "log", "output", "started_at", "status", "usage"}

// step returns the step's record and its run's.
func (d *stepDir) step() (jobs.Step, jobs.Run, error) {
	r, err := d.t.m.Run(d.jobID, d.id)
	if err != nil {
		return jobs.Step{}, r, err
	}
	s, ok := r.Step(d.label)
	if !ok {
		return jobs.Step{}, r, jobs.ErrNotFound
	}
	return *s, r, nil
}

// fill: the folder gains output/ when the step starts.
func (d *stepDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	s, r, err := d.step()
	if err != nil {
		return toErrno(err)
	}
	d.t.look(ctx, a, d.jobID, syscall.S_IFDIR, computed, stepStarted(r, s))
	return 0
}

func (d *stepDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *stepDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	s, _, err := d.step()
	if err != nil {
		return nil, toErrno(err)
	}
	var ents []fuse.DirEntry
	for _, name := range stepEntries {
		mode := uint32(syscall.S_IFREG)
		if name == "output" {
			// A step that never ran (SKIPPED) has no output folder: listing
			// one that Lookup refuses would break find, tar and rsync.
			if _, err := d.t.m.StatRunFile(d.jobID, d.id, s.Output); err != nil {
				continue
			}
			mode = syscall.S_IFDIR
		}
		ents = append(ents, fuse.DirEntry{Name: name, Mode: mode, Ino: ino(strconv.FormatUint(d.seed, 16), name)})
	}
	return dirEntries(d, ents...), 0
}

func (d *stepDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	s, r, err := d.step()
	if err != nil {
		return nil, toErrno(err)
	}
	id := ino(strconv.FormatUint(d.seed, 16), name)
	var node attrFiller
	mode := uint32(syscall.S_IFREG)
	switch name {
	case "log":
		node = &logFile{t: d.t, jobID: d.jobID, run: d.id, rel: s.Log, since: planned(r)}
	case "output":
		node, mode = &diskDir{t: d.t, jobID: d.jobID, run: d.id, rel: s.Output, seed: id}, syscall.S_IFDIR
	default:
		field, ok := stepFields[name]
		if !ok {
			return nil, syscall.ENOENT
		}
		node = &textFile{t: d.t, jobID: d.jobID, content: func() (string, time.Time, error) {
			s, r, err := d.step()
			if err != nil {
				return "", time.Time{}, err
			}
			return field.content(s), field.changed(r, s), nil
		}}
	}
	return newChild(ctx, d.EmbeddedInode(), node, mode, id, out)
}

func (d *stepDir) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.t.need(ctx, d.jobID, jobs.RoleOwner)
}

func (d *stepDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	return d.t.need(ctx, d.jobID, jobs.RoleOwner)
}

// stepField is a one-line file of a step folder: its content, and when
// that last changed.
type stepField struct {
	content func(jobs.Step) string
	changed func(jobs.Run, jobs.Step) time.Time
}

var stepFields = map[string]stepField{
	"status":     {func(s jobs.Step) string { return string(s.Status) + "\n" }, stepChanged},
	"started_at": {func(s jobs.Step) string { return stamp(s.StartedAt) }, stepStarted},
	"ended_at":   {func(s jobs.Step) string { return stamp(s.EndedAt) }, stepEnded},
	"error":      {func(s jobs.Step) string { return line(s.Error) }, stepEnded},
	"exit_code":  {func(s jobs.Step) string { return code(s.ExitCode) }, stepEnded},
	"usage":      {func(s jobs.Step) string { return usageText(stepUsage(s)) }, stepEnded},
}
