// Package fs maps the job tree onto a FUSE filesystem with go-fuse. It is a
// thin adapter: every node is one small type that calls into package jobs.
// It holds no domain logic and does no disk I/O of its own: write sessions
// with their undo (jobs.SettingWrite, jobs.ShareWrite), the staged input
// (jobs.StagedFile and the Manager's Stage* calls) and the files of a run
// (jobs.ReadFile from OpenLog and OpenRunFile) are package jobs', which
// names them by job, run and place, never by a path this package builds.
// What it keeps is the FUSE side: roles per request (owner.go), the memory
// budget of the buffers it holds (budget.go), inode numbers and caching.
// node_api_check.go asserts each node kind's go-fuse interfaces at compile
// time (go-fuse finds operations by type assertion: a drifted signature is
// otherwise silently never called).
//
// Errors (errno.go): an error becomes an errno in toErrno only. A domain
// error of package jobs maps by its kind: ErrNotFound ENOENT, ErrExists
// EEXIST, ErrInvalid EINVAL, ErrBusy EBUSY, ErrPermission EACCES,
// ErrTooLarge EFBIG, ErrStopped ESHUTDOWN; a cancelled request EINTR; an
// errno from a system call passes as it is (EPERM, ENOTEMPTY, ENOSPC); a
// bare os.ErrNotExist, ErrExist or ErrPermission is ENOENT, EEXIST or
// EACCES; anything else is logged and is EIO. Only "not there" is ENOENT: a
// store that cannot be read is EIO, never a job that seems gone. Below a
// run or stage folder, package jobs answers a symlink or a mount on the
// way (ELOOP, EXDEV) as ENOENT, as the tree shows neither. A node answers
// an errno itself only for what it decides alone (an operation the tree
// does not offer, a name that is not a run number, an interrupted wait).
//
// Interrupts: go-fuse cancels a request's context when the kernel
// interrupts it (Ctrl-C on a blocked cat). Reads that block (runs/N/log
// as a stream, runs/N/wait, .jobfs/events) wait on that context and end
// with EINTR; they end at EOF instead (wait: ESHUTDOWN, as its run has no
// status, and EINTR would be read again by cat) when the daemon begins to
// stop (Manager.Closing), so the mount can be unmounted. Nothing else
// blocks on a run.
//
// Caching (cache.go): entry and attribute timeouts are 0, because runs and
// their files change behind the kernel's back (a run ending, a log
// growing), except for what nothing but this mount changes: on a
// single-user mount of a store no other daemon shares, a job's entry in the
// top folder and its folder's attributes are kept by the kernel, and every
// change of them is invalidated (cache.go says how). Negative entries are
// never kept. Computed files are opened with FOPEN_DIRECT_IO, so a read
// always sees the current content and reads past a stale size work (tail -f
// polls st_size, which Getattr reports exactly).
//
// Attributes (owner.go, mtime.go, statfs.go, access.go): a node of a job
// shows the job owner's uid and gid; its owner bits say what the owner
// may do, its group and other bits what the caller may do when the caller
// is someone else, computed per request (the attribute timeout is 0 on a
// shared mount, where they differ per caller). There
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
// Locks and deadlocks: nodes never call back into the mount, and children
// never get a working directory or file inside it. The order is: the locks
// of a file node and of its open handles (a setting file's mu, then its
// writers' sessions when a truncate marks them; a data handle's mu, then
// its file's when it leaves the writers), then the tree's tables (temps,
// walks, the buffer budget), then package jobs. Package jobs calls back
// into this package only through the reserve function a setting's write
// session was given (settingHandle.fit, under the session's lock), which
// takes the handle's budget lock and then the budget's, nothing else.
// A reading handle's mu is held while its read waits for the run
// (stream, wait, events): it serialises reads of that one handle and
// nothing else; no lock shared between handles is held across such a wait.
package fs
