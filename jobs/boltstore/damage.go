package boltstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// ErrDamaged means the store file cannot be read as a bbolt database.
var ErrDamaged = errors.New("store damaged")

// damaged is the error for a damaged store: it names the file and says how
// to get going again.
func (s *Store) damaged(reason string) error {
	return fmt.Errorf("%w: %s is not a readable jobfs store (%s); restore it from a copy, "+
		"or move it aside (mv %s %s.damaged) and start again with an empty store "+
		"(the jobs' files in %s/jobs stay, unknown to jobfs)",
		ErrDamaged, s.path, reason, s.path, s.path, filepath.Dir(s.path))
}

// guard runs fn, turning a panic of bbolt (it panics on pages it cannot
// make sense of) and a memory fault (a page past the end of a truncated
// file) into ErrDamaged. Used around the open and the reads of every
// record at start, which are where a damaged file shows.
func (s *Store) guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = s.damaged(fmt.Sprint(r))
		}
	}()
	return fn()
}

// checkSize fails when the file is shorter than its own header says: a
// truncated copy, whose missing pages would fault at the first read.
func (s *Store) checkSize() error {
	st, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	var want int64
	err = s.db.View(func(tx *bolt.Tx) error {
		want = tx.Size()
		return nil
	})
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	if st.Size() < want {
		return s.damaged(fmt.Sprintf("%d bytes long, its header says %d: truncated", st.Size(), want))
	}
	return nil
}

// checkNotEmptied fails for an empty store file beside job folders: bbolt
// would make it a new, empty store, and every job would be lost from view
// (a file truncated to nothing, or replaced by an empty one).
func (s *Store) checkNotEmptied() error {
	st, err := os.Stat(s.path)
	if err != nil || st.Size() > 0 {
		return nil // a new store, or one bbolt checks
	}
	jobs, _ := os.ReadDir(filepath.Join(filepath.Dir(s.path), "jobs"))
	if len(jobs) == 0 {
		return nil
	}
	return s.damaged(fmt.Sprintf("empty, but %s holds the folders of %d jobs", filepath.Join(filepath.Dir(s.path), "jobs"), len(jobs)))
}
