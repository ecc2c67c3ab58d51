// Package fs maps the job tree onto a FUSE filesystem with go-fuse. It is a
// thin adapter: every node is one small type that calls into package jobs,
// and every error goes through toErrno.
//
// Caching: the mount's entry and attribute timeouts are 0, because jobs,
// runs and their files change behind the kernel's back (a run ending, a job
// renamed by another shell). Computed files are opened with FOPEN_DIRECT_IO,
// so a read always sees the current content and reads past a stale size work
// (tail -f polls st_size, which Getattr reports exactly).
//
// Attributes (owner.go, mtime.go, statfs.go, access.go): a node of a job
// shows the job owner's uid and gid; its owner bits say what the owner
// may do, its group and other bits what the caller may do when the caller
// is someone else, computed per request (the attribute timeout is 0). There
// is no default_permissions, so the kernel asks the daemon only for
// access(2) and chdir: every node answers ACCESS from those same bits, with
// no exception for root, and checks the role itself at open, create and
// unlink. Times come from the records (a run's queued, started and ended
// times; a setting's, a share's, a secret's change time, runs/ on delete,
// kept in the store's mtimes), never from the daemon's start. Every node
// answers statfs from the state folder's filesystem.
//
// Writes: settings and data buffer per open handle. A value is validated in
// Write (where the shell's echo sees the error) and acted on at the first
// Flush after a write. A setting truncated with nothing written after it
// (`: > config/timeout`) is reset at the flush, which close(2) waits for;
// bash's `echo x > f` flushes once before writing, so that reset is
// logged only at Release, when no value followed.
//
// Removal: rmdir of a job deletes it although it shows files (as cgroupfs
// does), or is refused with EBUSY while a run is active. Removing a setting
// resets it, rmdir of runs/<id> deletes that run, unlinking a computed file
// succeeds and changes nothing; but a process that removes inside a job it
// holds open (rm -r, rm -rf, mv out) changes nothing until the job's own
// rmdir, so a job is deleted whole or not at all (walk.go).
//
// Deadlocks: nodes never call back into the mount, children never get a
// working directory or file inside it, and no lock of this package is held
// across a call that can block on a run.
package fs
