package boltstore

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// reserveSize is what the reserve file holds: room for the store to
// delete a job of many runs (the pages it rewrites, a longer freelist) on
// a disk that is otherwise full.
var reserveSize int64 = 4 << 20

// reserveRetry is how often a released reserve is tried again.
var reserveRetry = 5 * time.Second

// reserve is a file of allocated blocks beside the store (jobfs.reserve).
// On a full disk bbolt cannot write even a delete (it copies the pages it
// changes), and deleting runs and jobs is how a person frees space: the
// reserve is given back to the file system when such a write meets
// ENOSPC, and made again once the disk has room.
type reserve struct {
	path string
	once sync.Once
	stop chan struct{} // closed by close: no more retries
	mu   sync.Mutex    // one retry loop at a time; guards retrying
	wg   sync.WaitGroup
	// retrying is set while a loop tries to make the file again.
	retrying bool
}

func newReserve(path string) *reserve {
	r := &reserve{path: path, stop: make(chan struct{})}
	if st, err := os.Stat(path); err == nil && st.Size() >= reserveSize {
		return r
	}
	if r.make() != nil { // a full disk at start: try again later
		r.retryLater()
	}
	return r
}

// make allocates the reserve file; on failure no file is left (a partial
// one would only hide how full the disk is).
func (r *reserve) make() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	err = syscall.Fallocate(int(f.Fd()), 0, 0, reserveSize)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		err = writeZeros(f, reserveSize)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(r.path) // best effort: a later make allocates it whole again
	}
	return err
}

// writeZeros fills f to size where the file system has no fallocate.
func writeZeros(f *os.File, size int64) error {
	buf := make([]byte, 64<<10)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// release gives the reserve's blocks back and reports whether there were
// any; a loop makes it again once it can.
func (r *reserve) release() bool {
	err := os.Remove(r.path)
	r.retryLater()
	return err == nil
}

// retryLater starts the loop that makes the reserve again, unless one runs.
func (r *reserve) retryLater() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retrying {
		return
	}
	r.retrying = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(reserveRetry)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				r.setRetrying(false)
				return
			case <-t.C:
			}
			if r.make() == nil {
				r.setRetrying(false)
				return
			}
		}
	}()
}

func (r *reserve) setRetrying(v bool) {
	r.mu.Lock()
	r.retrying = v
	r.mu.Unlock()
}

// close ends the retry loop and waits for it.
func (r *reserve) close() {
	if r == nil {
		return
	}
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
}

// updateFreeing runs a delete, which must work on a full disk (it is how
// space is freed): on ENOSPC it releases the reserve and tries once more.
// Other writes never use the reserve, so a step filling the disk cannot
// take it from the deletes.
func (s *Store) updateFreeing(fn func(*bolt.Tx) error) error {
	err := s.db.Update(fn)
	if !errors.Is(err, syscall.ENOSPC) || s.reserve == nil || !s.reserve.release() {
		return err
	}
	return s.db.Update(fn)
}
