package jobs

import (
	"testing"
	"time"
)

// Records written straight into a Store, as a crashed daemon left them.

var t0 = time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)

func mustStoreJob(t *testing.T, s Store, id string, owner Owner, name string) Job {
	t.Helper()
	j := Job{ID: id, Owner: owner, Name: name, Created: t0}
	if err := s.CreateJob(j); err != nil {
		t.Fatalf("create job %s: %v", name, err)
	}
	return j
}

func mustCreateRun(t *testing.T, s Store, jobID string, r Run) Run {
	t.Helper()
	r, err := s.CreateRun(jobID, r)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// storeTime is when key of job id last changed, zero when never.
