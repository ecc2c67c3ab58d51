package boltstore

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs/domain"
)

// newTestStore opens a store in a fresh folder; cleanup checks the bbolt
// file's consistency, then closes it.
func newTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jobfs.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		_ = s.Close() // checked above
	})
	return s, path
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

type Step = domain.Step

const (
	Pending   = domain.Pending
	Running   = domain.Running
	Completed = domain.Completed
	Failed    = domain.Failed
	Manual    = domain.Manual
	Timeout   = domain.Timeout
	Cancelled = domain.Cancelled
	Skipped   = domain.Skipped
)

// jobName is name as the store tests record it (no steps run here, so no
// per-binary prefix is needed).
func jobName(name string) string { return name }

// eventually waits up to 30 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 6000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s", what)
}

func intp(n int) *int { return &n }
