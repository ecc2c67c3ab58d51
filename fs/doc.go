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
// Writes: settings and data buffer per open handle. A value is validated in
// Write (where the shell's echo sees the error) and acted on at the first
// Flush after a write; bash's `echo x > f` flushes once before writing, so a
// flush without a write does nothing. Release is only used to apply a
// truncation that had no write (`: > config/timeout` resets the setting).
//
// Removal: rmdir of a job deletes it although it shows files (as cgroupfs
// does). So that `rm -rf` works too, unlinking a computed file inside a job
// succeeds and changes nothing, removing a setting resets it, and rmdir of
// runs/<id> deletes that run; all of them are refused with EBUSY while a run
// of the job is active, so a refused `rm -rf` leaves the job whole.
//
// Deadlocks: nodes never call back into the mount, children never get a
// working directory or file inside it, and no lock of this package is held
// across a call that can block on a run.
package fs
