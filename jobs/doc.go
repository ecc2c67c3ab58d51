// Package jobs is the domain of jobfs: jobs, their settings, runs and the
// Store that keeps them (store_iface.go; boltstore.Store, one bbolt file, is the
// default, and jobs/storetest the contract every Store passes), and the
// Manager that validates what a user writes, starts runs, queues them under a
// daemon-wide cap and recovers after a restart.
//
// It knows nothing of FUSE: every method takes plain values and returns a Go
// error wrapping one of the sentinels in errors.go, whose text is the reason a
// person reads. Rejections of user input are also appended, as one line, to
// the job's event log, so a shell user who only sees an errno can find out why.
//
// State on disk (one directory, --state):
//
//	jobfs.db                      bbolt: jobs, settings, run records
//	jobs/<id>/log                 the job's event log
//	jobs/<id>/input/              files staged for the next run
//	jobs/<id>/runs/<n>/           log, input/, output/, work/, result.zip
//
// Folders are keyed by the job's stable id (its shortname), not its name, so a
// rename is one transaction and moves no file, even while a run is active.
package jobs
