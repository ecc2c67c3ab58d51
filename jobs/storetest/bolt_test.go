package storetest

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/boltstore"
)

// TestBoltStoreContract runs the contract on the embedded bbolt store,
// each store in a fresh folder, checked for consistency at the end.
func TestBoltStoreContract(t *testing.T) {
	var mu sync.Mutex
	paths := map[jobs.Store]string{}
	openAt := func(t *testing.T, path string) jobs.Store {
		s, err := boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		paths[s] = path
		mu.Unlock()
		t.Cleanup(func() {
			mu.Lock()
			_, open := paths[s]
			mu.Unlock()
			if !open {
				return // closed by reopen
			}
			if err := s.Check(); err != nil {
				t.Errorf("bbolt check of %s: %v", path, err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("close %s: %v", path, err)
			}
		})
		return s
	}
	open := func(t *testing.T) jobs.Store {
		return openAt(t, filepath.Join(t.TempDir(), "jobfs.db"))
	}
	reopen := func(t *testing.T, s jobs.Store) jobs.Store {
		mu.Lock()
		path := paths[s]
		delete(paths, s)
		mu.Unlock()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return openAt(t, path)
	}
	StoreContract(t, open, reopen)
}
