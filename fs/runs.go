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

// runsDir is MOUNT/<job>/runs: one folder per run, and latest.
type runsDir struct {
	gofs.Inode
	t     *tree
	jobID string
}

// fill: the owner may remove runs (rmdir runs/<id>); the mtime is when a
// run was last added or deleted.
func (d *runsDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	d.t.look(ctx, a, d.jobID, syscall.S_IFDIR, setting, d.t.m.RunsChanged(d.jobID))
	return 0
}

func (d *runsDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *runsDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	ids, err := d.t.m.Runs(d.jobID)
	if err != nil {
		return nil, toErrno(err)
	}
	ents := make([]fuse.DirEntry, 0, len(ids)+1)
	for _, id := range ids {
		name := strconv.FormatUint(id, 10)
		ents = append(ents, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: ino(d.jobID, "runs", name)})
	}
	if len(ids) > 0 {
		ents = append(ents, fuse.DirEntry{Name: "latest", Mode: syscall.S_IFLNK, Ino: ino(d.jobID, "runs", "latest")})
	}
	return dirEntries(d, ents...), 0
}

func (d *runsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if name == "latest" {
		node := &latestLink{t: d.t, jobID: d.jobID}
		return newChild(ctx, d.EmbeddedInode(), node, syscall.S_IFLNK, ino(d.jobID, "runs", name), out)
	}
	id, err := strconv.ParseUint(name, 10, 64)
	if err != nil || strconv.FormatUint(id, 10) != name {
		return nil, syscall.ENOENT
	}
	if _, err := d.t.m.Run(d.jobID, id); err != nil {
		return nil, toErrno(err)
	}
	node := &runDir{t: d.t, jobID: d.jobID, id: id}
	return newChild(ctx, d.EmbeddedInode(), node, syscall.S_IFDIR, ino(d.jobID, "runs", name), out)
}

// Rmdir of runs/<id> deletes that run (refused while the job is busy),
// except inside a job being deleted whole (walk.go).
func (d *runsDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if d.t.walking(ctx, d.jobID) {
		return 0
	}
	id, err := strconv.ParseUint(name, 10, 64)
	if err != nil {
		return syscall.ENOENT
	}
	return toErrno(d.t.m.DeleteRun(d.jobID, id))
}

// Unlink of latest is accepted and changes nothing (rm -rf).
func (d *runsDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if name != "latest" {
		return syscall.ENOENT
	}
	if d.t.m.Busy(d.jobID) && !d.t.walking(ctx, d.jobID) {
		return syscall.EBUSY
	}
	return 0
}

// latestLink is runs/latest, a symlink to the newest run's folder.
type latestLink struct {
	gofs.Inode
	t     *tree
	jobID string
}

func (l *latestLink) target() (string, error) {
	id, err := l.t.m.LatestRun(l.jobID)
	if err != nil {
		return "", err
	}
	if id == 0 {
		return "", jobs.ErrNotFound
	}
	return strconv.FormatUint(id, 10), nil
}

// fill: the link changed when its run was queued.
func (l *latestLink) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	s, err := l.target()
	if err != nil {
		return toErrno(err)
	}
	id, _ := strconv.ParseUint(s, 10, 64) // target made it
	r, err := l.t.m.Run(l.jobID, id)
	if err != nil {
		return toErrno(err)
	}
	a.Size = uint64(len(s))
	l.t.look(ctx, a, l.jobID, syscall.S_IFLNK, computed, r.Queued)
	return 0
}

func (l *latestLink) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return l.fill(ctx, &out.Attr)
}

func (l *latestLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	s, err := l.target()
	if err != nil {
		return nil, toErrno(err)
	}
	return []byte(s), 0
}

// runDir is runs/<id>.
type runDir struct {
	gofs.Inode
	t     *tree
	jobID string
	id    uint64
}

// runEntries are listed in a run folder; stream and wait are not (they
// block), but are reachable by name.
var runEntries = []string{"ctl", "duration", "ended_at", "error", "exit_code", "input", "log", "node", "output", "result", "retry_at", "retry_of", "slurm_job", "started_at", "status", "status.json", "steps", "trigger", "triggered_by", "usage"}

// fill: writable for the owner, whose rm -r of a run passes through it.
func (d *runDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	r, err := d.t.m.Run(d.jobID, d.id)
	if err != nil {
		return toErrno(err)
	}
	d.t.look(ctx, a, d.jobID, syscall.S_IFDIR, setting, runDirChanged(r))
	return 0
}

func (d *runDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *runDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	r, err := d.t.m.Run(d.jobID, d.id)
	if err != nil {
		return nil, toErrno(err)
	}
	var ents []fuse.DirEntry
	for _, name := range runEntries {
		mode := uint32(syscall.S_IFREG)
		switch name {
		case "input", "output":
			mode = syscall.S_IFDIR
		case "steps":
			ents = append(ents, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: d.ino(name)})
			continue
		case "node":
			if r.Node == "" { // a single daemon's run: no node to name
				continue
			}
		case "slurm_job":
			if ids, _ := d.t.m.SlurmJobs(d.jobID, d.id); ids == "" { // no step went to Slurm
				continue
			}
		}
		if d.onDisk(name, r) {
			ents = append(ents, fuse.DirEntry{Name: name, Mode: mode, Ino: d.ino(name)})
		}
	}
	return dirEntries(d, ents...), 0
}

// onDisk reports whether Lookup finds name: input/, output/ and result are
// files of the run folder that a run may lack (one refused before it
// started, one whose output was over --max-result); a listed name that
// Lookup refuses breaks find, du, tar and rsync.
func (d *runDir) onDisk(name string, r jobs.Run) bool {
	rel := name
	switch name {
	case "result":
		if r.Result == "" {
			return false
		}
		rel = r.Result
	case "input", "output":
	default:
		return true
	}
	st, err := d.t.m.StatRunFile(d.jobID, d.id, rel)
	if err != nil {
		return false
	}
	if name == "result" {
		return st.Mode&syscall.S_IFMT == syscall.S_IFREG
	}
	return st.Mode&syscall.S_IFMT == syscall.S_IFDIR
}

func (d *runDir) ino(name string) uint64 {
	return ino(d.jobID, "runs", strconv.FormatUint(d.id, 10), name)
}

func (d *runDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	r, err := d.t.m.Run(d.jobID, d.id)
	if err != nil {
		return nil, toErrno(err)
	}
	var node attrFiller
	mode := uint32(syscall.S_IFREG)
	switch name {
	case "log":
		node = &logFile{t: d.t, jobID: d.jobID, run: d.id, since: r.Queued}
	case "stream":
		node = &streamFile{t: d.t, jobID: d.jobID, id: d.id, since: r.Queued}
	case "wait":
		node = &waitFile{t: d.t, jobID: d.jobID, id: d.id}
	case "ctl":
		node = &ctlFile{t: d.t, jobID: d.jobID, id: d.id}
	case "input", "output":
		if !d.onDisk(name, r) {
			return nil, syscall.ENOENT
		}
		node, mode = &diskDir{t: d.t, jobID: d.jobID, run: d.id, rel: name, seed: d.ino(name)}, syscall.S_IFDIR
	case "steps":
		node, mode = &stepsDir{t: d.t, jobID: d.jobID, id: d.id}, syscall.S_IFDIR
	case "duration":
		node = d.durationFile()
	case "slurm_job":
		node = &textFile{t: d.t, jobID: d.jobID, content: d.slurmJobs}
	case "status.json":
		node = d.statusFile()
	case "result":
		if !d.onDisk(name, r) {
			return nil, syscall.ENOENT // none, or not a regular file
		}
		node = &diskFile{t: d.t, jobID: d.jobID, run: d.id, rel: r.Result}
	default:
		field, ok := runFields[name]
		if !ok {
			return nil, syscall.ENOENT
		}
		node = &textFile{t: d.t, jobID: d.jobID, content: d.field(field)}
	}
	return newChild(ctx, d.EmbeddedInode(), node, mode, d.ino(name), out)
}

// field returns the content function of one computed run file.
func (d *runDir) field(f runField) func() (string, time.Time, error) {
	return func() (string, time.Time, error) {
		r, err := d.t.m.Run(d.jobID, d.id)
		if err != nil {
			return "", time.Time{}, err
		}
		return f.content(r), f.changed(r), nil
	}
}

// runField is a one-line file of a run folder: its content, and when that
// last changed.
type runField struct {
	content func(jobs.Run) string
	changed func(jobs.Run) time.Time
}

func queued(r jobs.Run) time.Time { return r.Queued }

func started(r jobs.Run) time.Time { return orElse(r.StartedAt, r.Queued) }

// runFields are the one-line files of a run folder.
var runFields = map[string]runField{
	"status":       {func(r jobs.Run) string { return string(r.Status) + "\n" }, runChanged},
	"trigger":      {func(r jobs.Run) string { return string(r.Trigger) + "\n" }, queued},
	"started_at":   {func(r jobs.Run) string { return stamp(r.StartedAt) }, started},
	"ended_at":     {func(r jobs.Run) string { return stamp(r.EndedAt) }, runEnded},
	"error":        {func(r jobs.Run) string { return line(r.Error) }, runEnded},
	"exit_code":    {func(r jobs.Run) string { return code(r.ExitCode) }, runEnded},
	"triggered_by": {func(r jobs.Run) string { return r.Who() + "\n" }, queued},
	"usage":        {func(r jobs.Run) string { return usageText(r.TotalUsage()) }, usageChanged},
	"retry_of":     {func(r jobs.Run) string { return retryOf(r) }, queued},
	"retry_at":     {func(r jobs.Run) string { return stamp(r.RetryAt) }, queued},
	// node is the cluster node that claimed the run (empty before a node
	// did, and on a single daemon).
	"node": {func(r jobs.Run) string { return line(r.Node) }, runChanged},
}

// retryOf is the id of the run a retry retries, empty for another run.
func retryOf(r jobs.Run) string {
	if r.RetryOf == 0 {
		return ""
	}
	return strconv.FormatUint(r.RetryOf, 10) + "\n"
}

func code(c *int) string {
	if c == nil {
		return ""
	}
	return strconv.Itoa(*c) + "\n"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339) + "\n"
}

func line(s string) string {
	if s == "" {
		return ""
	}
	return s + "\n"
}

// Unlink and Rmdir inside a run change nothing, also while a run is
// active; rmdir of the run folder itself (in runsDir) deletes it, or is
// refused with its reason in the job's log. (Refused one by one, rm -r of
// an active run's folder printed an EBUSY per file and logged nothing.)
func (d *runDir) Unlink(ctx context.Context, name string) syscall.Errno { return d.noop(ctx) }
func (d *runDir) Rmdir(ctx context.Context, name string) syscall.Errno  { return d.noop(ctx) }

func (d *runDir) noop(ctx context.Context) syscall.Errno {
	return d.t.need(ctx, d.jobID, jobs.RoleOwner)
}

// slurmJobs is runs/<id>/slurm_job: "ID LABEL", a line per step submitted
// to Slurm (config/backend slurm); empty for a run on this machine. Its
// mtime is the run's start.
func (d *runDir) slurmJobs() (string, time.Time, error) {
	r, err := d.t.m.Run(d.jobID, d.id)
	if err != nil {
		return "", time.Time{}, err
	}
	ids, err := d.t.m.SlurmJobs(d.jobID, d.id)
	return ids, started(r), err
}
