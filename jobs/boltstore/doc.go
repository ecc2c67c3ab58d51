// Package boltstore is the embedded Store of jobs: one bbolt file in the
// state folder (jobfs.db), each operation one transaction fsync'd before it
// returns, with an index of active runs (mount time independent of
// history), a change feed, a disk reserve so a full disk cannot stop a
// delete, and checks that refuse a damaged file instead of panicking. It
// passes jobs/storetest's contract, as the etcd store does.
package boltstore
