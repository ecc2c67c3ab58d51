package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jobfs/jobfs/jobs/domain"
)

// scanAllActive is ActiveRuns the old way, reading every record: what the
// index must agree with.
func scanAllActive(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		return jobs.ForEachBucket(func(id []byte) error {
			return jobs.Bucket(id).Bucket(bucketRuns).ForEach(func(k, v []byte) error {
				var r Run
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				if !r.Status.Terminal() {
					out = append(out, string(id)+"/"+itoa(binary.BigEndian.Uint64(k)))
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func activeNames(t *testing.T, s *Store) []string {
	t.Helper()
	refs, err := s.ActiveRuns()
	return refNames(t, refs, err)
}

// refNames is a list of runs as job/run names, sorted; err fails the test.
func refNames(t *testing.T, refs []RunRef, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range refs {
		out = append(out, r.JobID+"/"+itoa(r.Run.ID))
	}
	slices.Sort(out)
	return out
}

func wantActive(t *testing.T, s *Store, want ...string) {
	t.Helper()
	got, all := activeNames(t, s), scanAllActive(t, s)
	if !slices.Equal(got, want) || !slices.Equal(all, want) {
		t.Errorf("ActiveRuns = %v, every record says %v, want %v", got, all, want)
	}
}

// TestIndexFollowsRuns: creating, ending, deleting runs and deleting a job
// keep the index of active runs equal to what the records say.
func TestIndexFollowsRuns(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "a", 1000, "a")
	mustStoreJob(t, s, "b", 1000, "b")
	mustCreateRun(t, s, "a", Run{Status: Completed, Queued: t0})
	mustCreateRun(t, s, "a", Run{Status: Pending, Queued: t0})
	mustCreateRun(t, s, "b", Run{Status: Running, Queued: t0})
	mustCreateRun(t, s, "b", Run{Status: Pending, Queued: t0})
	wantActive(t, s, "a/2", "b/1", "b/2")

	if _, err := s.UpdateRun("a", 2, func(r *Run) { r.Status = Running }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateRun("b", 1, func(r *Run) { r.Status = Failed }); err != nil {
		t.Fatal(err)
	}
	wantActive(t, s, "a/2", "b/2")
	if err := s.DeleteRun("a", 2); err != nil {
		t.Fatal(err)
	}
	wantActive(t, s, "b/2")
	if err := s.DeleteJob("b"); err != nil {
		t.Fatal(err)
	}
	wantActive(t, s)
	mustStoreJob(t, s, "b", 1000, "b") // the same id again starts empty
	mustCreateRun(t, s, "b", Run{Status: Completed, Queued: t0})
	wantActive(t, s)
}

// TestIndexWriterWithoutIndex: a run stored through runsBucket by code
// that does not keep the index (a follow-up's new run) is found at the
// next start, and the mark is cleared.
func TestIndexWriterWithoutIndex(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "a", 1000, "a")
	mustCreateRun(t, s, "a", Run{Status: Completed, Queued: t0})
	err := s.db.Update(func(tx *bolt.Tx) error {
		runs, err := runsBucket(tx, "a")
		if err != nil {
			return err
		}
		id, err := runs.NextSequence()
		if err != nil {
			return err
		}
		return putJSON(runs, runIDKey(id), Run{ID: id, Status: Pending, Queued: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	wantActive(t, s, "a/2")
	err = s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketActive).Bucket(subDirty).Cursor().First(); k != nil {
			t.Errorf("job %s still marked dirty after ActiveRuns", k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateRun("a", 2, func(r *Run) { r.Status = Completed }); err != nil {
		t.Fatal(err)
	}
	wantActive(t, s)
}

// TestIndexBuiltForOldStore: a state folder of a jobfs without the index
// (no daemon/index, no active bucket) gets it built on first open, and a
// second open reads the index, not the runs.
func TestIndexBuiltForOldStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobfs.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustStoreJob(t, s, "a", 1000, "a")
	mustCreateRun(t, s, "a", Run{Status: Completed, Queued: t0})
	mustCreateRun(t, s, "a", Run{Status: Running, Queued: t0.Add(time.Second)})
	mustCreateRun(t, s, "a", Run{Status: Pending, Queued: t0})
	err = s.db.Update(func(tx *bolt.Tx) error { // as an older jobfs left it
		if err := tx.DeleteBucket(bucketActive); err != nil {
			return err
		}
		return tx.Bucket(bucketDaemon).Delete(keyIndex)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for open := 1; open <= 2; open++ {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		refs, err := s.ActiveRuns()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range refs {
			got = append(got, r.JobID+"/"+itoa(r.Run.ID)+"/"+string(r.Run.Status))
		}
		if want := []string{"a/3/PENDING", "a/2/RUNNING"}; !slices.Equal(got, want) {
			t.Errorf("open %d: ActiveRuns = %v, want %v (oldest queued first)", open, got, want)
		}
		if err := s.Check(); err != nil {
			t.Error(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIndexScheduledJobs: ScheduledJobs lists the jobs with a stored
// config/schedule, after setting, deleting it and deleting a job, and
// after the index is built for a store that had none.
func TestIndexScheduledJobs(t *testing.T) {
	s, _ := newTestStore(t)
	for _, id := range []string{"a", "b", "c"} {
		mustStoreJob(t, s, id, 1000, id)
	}
	want := func(ids ...string) {
		t.Helper()
		list, err := s.ScheduledJobs()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range list {
			got = append(got, j.ID)
		}
		if !slices.Equal(got, ids) {
			t.Errorf("ScheduledJobs = %v, want %v", got, ids)
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := s.SetSetting(id, keySchedule, "@every 1m", t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetSetting("a", "config/timeout", "5m", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSetting("b", keySchedule, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteJob("c"); err != nil {
		t.Fatal(err)
	}
	want("a")
	err := s.db.Update(func(tx *bolt.Tx) error { // as an older jobfs left it
		if err := tx.DeleteBucket(bucketActive); err != nil {
			return err
		}
		return tx.Bucket(bucketDaemon).Delete(keyIndex)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(ensureIndex)
	if err != nil {
		t.Fatal(err)
	}
	want("a")
}

// TestJobListFollowsChanges: Jobs and JobByName, served from the kept list
// once listed, follow every create, rename and delete at once.
func TestJobListFollowsChanges(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "b", 1000, "beta")
	mustStoreJob(t, s, "x", 1001, "beta") // another owner's
	names := func() []string {
		t.Helper()
		list, err := s.Jobs(1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, j := range list {
			out = append(out, j.Name)
		}
		return out
	}
	lookup := func(name string) string {
		t.Helper()
		j, err := s.JobByName(1000, name)
		if errors.Is(err, domain.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	if got := names(); !slices.Equal(got, []string{"beta"}) {
		t.Fatalf("Jobs = %v, want [beta]", got)
	}
	list, _ := s.Jobs(1000)
	list[0].Name = "changed by a caller" // a copy: the kept list stays
	mustStoreJob(t, s, "a", 1000, "alpha")
	if got := names(); !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Errorf("after create: Jobs = %v, want [alpha beta]", got)
	}
	if got := lookup("alpha"); got != "a" {
		t.Errorf("after create: JobByName(alpha) = %q, want a", got)
	}
	if err := s.RenameJob("b", "gamma"); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"alpha", "gamma"}) {
		t.Errorf("after rename: Jobs = %v, want [alpha gamma]", got)
	}
	if got, gone := lookup("gamma"), lookup("beta"); got != "b" || gone != "" {
		t.Errorf("after rename: JobByName gamma = %q, beta = %q; want b and none", got, gone)
	}
	if err := s.DeleteJob("a"); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"gamma"}) {
		t.Errorf("after delete: Jobs = %v, want [gamma]", got)
	}
	if got := lookup("alpha"); got != "" {
		t.Errorf("after delete: JobByName(alpha) = %q, want none", got)
	}
	if _, err := s.Job("a"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("after delete: Job(a) = %v, want domain.ErrNotFound", err)
	}
	if j, err := s.Job("b"); err != nil || j.Name != "gamma" {
		t.Errorf("after rename: Job(b) = %+v, %v; want gamma", j, err)
	}
	if j, err := s.JobByName(1001, "beta"); err != nil || j.ID != "x" {
		t.Errorf("the other owner's beta = %+v, %v", j, err)
	}
}
