// Package integration tests the real jobfs binary on a real FUSE mount, the
// way a person uses it: a shell and its tools (echo, printf, cat, ls, mv,
// rm -rf, tail, cp, df).
//
// TestMain builds cmd/jobfs, cmd/jobfs-init and cmd/jobfs-shim once, with
// -race, into a temporary folder (JOBFS_BIN=/path/to/jobfs uses a prebuilt
// binary and the jobfs-init and jobfs-shim beside it instead); each daemon
// gets links to all three. Every test
// starts its own daemon through startDaemon, which mounts on a t.TempDir(),
// waits for the daemon's "ready:" line and, in t.Cleanup, stops it with
// SIGTERM, lazily unmounts what is left, kills what survived and fails the
// test for any process a run left behind or a data race the daemon reported.
// With -v the daemon logs every FUSE request (--debug); its stderr is
// printed when a test fails.
//
// Shell commands run with bash started under the name sh (bash's POSIX
// mode, the shell of the README's session) from the folder holding mnt/,
// state/ and repos/, so a test reads like the session it checks. Not dash:
// dash reports every failed echo as "I/O error", whatever the errno, so a
// person on Debian never sees the errno the daemon chose; bash and
// coreutils print it ("write error: Invalid argument").
//
// Tests that measure speed run a second build without -race (daemonOpts
// plain), which makes the daemon several times slower. The daemon starts
// the step init with GORACE's atexit_sleep_ms=0, so a -race init does not
// sleep 1 s at exit.
//
// Runs are awaited with a bounded loop on `cat runs/N/status`; no test
// asserts on timing. Skipped with a reason where /dev/fuse is missing, or
// where a normal user has no fusermount3.
package integration
