package boltstore

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// jobsFromRecords is Jobs the old way, from each job's JSON record: what
// the listing must agree with.
func jobsFromRecords(t *testing.T, s *Store, owner Owner) []Job {
	t.Helper()
	var out []Job
	prefix := nameKey(owner, "")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketNames).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			b, err := jobBucket(tx, string(v))
			if err != nil {
				return err
			}
			j, err := readJob(b)
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameJob: the same job, created at the same instant in the same zone (a
// fixed zone is a new *time.Location at each decode, JSON's too).
func sameJob(a, b Job) bool {
	an, ao := a.Created.Zone()
	bn, bo := b.Created.Zone()
	return a.ID == b.ID && a.Owner == b.Owner && a.Name == b.Name && a.Created.Equal(b.Created) &&
		an == bn && ao == bo && a.Created.Location().String() == b.Created.Location().String()
}

// wantListing checks that Jobs (through the listing, not kept: the store
// is asked afresh) and JobByName agree with the records, time zones too.
func wantListing(t *testing.T, s *Store, owner Owner, names ...string) {
	t.Helper()
	s.jobs.changed() // read the listing, not the kept list
	got, err := s.readJobs(owner, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := jobsFromRecords(t, s, owner)
	var gotNames []string
	for _, j := range got {
		gotNames = append(gotNames, j.Name)
	}
	if !slices.Equal(gotNames, names) {
		t.Errorf("Jobs(%d) names = %v, want %v", owner, gotNames, names)
	}
	if !slices.EqualFunc(got, want, sameJob) {
		t.Errorf("Jobs(%d) from the listing = %+v, the records say %+v", owner, got, want)
	}
	for _, w := range want {
		j, err := s.JobByName(owner, w.Name)
		if err != nil || !sameJob(j, w) {
			t.Errorf("JobByName(%d, %s) = %+v, %v; the record says %+v", owner, w.Name, j, err, w)
		}
	}
}

// TestListingFollowsJobs: creating, renaming and deleting jobs keep the
// listing equal to the jobs' records, with creation times in UTC, in a
// fixed zone and with a monotonic reading as a daemon's clock gives them.
func TestListingFollowsJobs(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "a", 1000, "beta")
	if err := s.CreateJob(Job{ID: "b", Owner: 1000, Name: "alpha", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	east := time.FixedZone("", 5*3600+1800)
	if err := s.CreateJob(Job{ID: "c", Owner: 1000, Name: "gamma", Created: t0.In(east)}); err != nil {
		t.Fatal(err)
	}
	mustStoreJob(t, s, "d", 1001, "alpha")
	wantListing(t, s, 1000, "alpha", "beta", "gamma")
	wantListing(t, s, 1001, "alpha")
	if err := s.RenameJob("a", "delta"); err != nil {
		t.Fatal(err)
	}
	wantListing(t, s, 1000, "alpha", "delta", "gamma")
	if err := s.DeleteJob("b"); err != nil {
		t.Fatal(err)
	}
	wantListing(t, s, 1000, "delta", "gamma")
	wantListing(t, s, 1001, "alpha")
	if _, err := s.JobByName(1000, "alpha"); err == nil {
		t.Error("JobByName finds the deleted job")
	}
}

// TestListingBuiltForOldStore: a store of a jobfs without the listing gets
// it built from the jobs' records on first open.
func TestListingBuiltForOldStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobfs.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustStoreJob(t, s, "a", 1000, "a")
	mustStoreJob(t, s, "b", 1000, "b")
	mustStoreJob(t, s, "c", 0, "c")
	err = s.db.Update(func(tx *bolt.Tx) error { // as an older jobfs left it
		if err := tx.DeleteBucket(bucketListing); err != nil {
			return err
		}
		return tx.Bucket(bucketDaemon).Delete(keyListing)
	})
	mustOK(t, err)
	mustOK(t, s.Close())
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }() // read only here
	wantListing(t, s, 1000, "a", "b")
	wantListing(t, s, 0, "c")
	mustOK(t, s.Check())
}

// followupNames is FollowupRuns as job/run names, sorted.
func followupNames(t *testing.T, s *Store) []string {
	t.Helper()
	refs, err := s.FollowupRuns()
	return refNames(t, refs, err)
}

// TestFollowupIndex: FollowupRuns lists exactly the ended runs whose
// Followup mark is set, through ends, clears, deletes, a writer without
// the index, and for a store whose index had no follow-ups yet.
func TestFollowupIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobfs.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		mustOK(t, s.Check())
		_ = s.Close() // checked above
	}()
	mustStoreJob(t, s, "a", 1000, "a")
	mustStoreJob(t, s, "b", 1000, "b")
	mustCreateRun(t, s, "a", Run{Status: Completed, Queued: t0})
	mustCreateRun(t, s, "a", Run{Status: Running, Queued: t0})
	mustCreateRun(t, s, "b", Run{Status: Failed, Queued: t0, Followup: true})
	mustCreateRun(t, s, "b", Run{Status: Completed, Queued: t0, Followup: true})
	want := func(names ...string) {
		t.Helper()
		if got := followupNames(t, s); !slices.Equal(got, names) {
			t.Errorf("FollowupRuns = %v, want %v", got, names)
		}
	}
	want("b/1", "b/2")
	_, err = s.UpdateRun("a", 2, func(r *Run) { r.Status, r.Followup = Completed, true })
	mustOK(t, err)
	want("a/2", "b/1", "b/2")
	_, err = s.UpdateRun("b", 1, func(r *Run) { r.Followup = false })
	mustOK(t, err)
	want("a/2", "b/2")
	mustOK(t, s.DeleteRun("b", 2))
	want("a/2")
	mustOK(t, s.DeleteJob("a"))
	want()

	// A writer that does not keep the index: the job is dirty, its newest
	// runs are read.
	err = s.db.Update(func(tx *bolt.Tx) error {
		runs, err := runsBucket(tx, "b")
		if err != nil {
			return err
		}
		id, err := runs.NextSequence()
		if err != nil {
			return err
		}
		return putJSON(runs, runIDKey(id), Run{ID: id, Status: Completed, Queued: t0, Followup: true})
	})
	mustOK(t, err)
	want("b/3")
	_, err = s.ActiveRuns() // reads the dirty job into the index
	mustOK(t, err)
	want("b/3")

	// A store whose index was made without active/f.
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketActive).DeleteBucket(subFollowup); err != nil {
			return err
		}
		return tx.Bucket(bucketDaemon).Delete(keyFollowups)
	})
	mustOK(t, err)
	mustOK(t, s.Close())
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	want("b/3")
	var keys int
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketActive).Bucket(subFollowup).ForEach(func(k, _ []byte) error {
			if jobID, id, ok := splitActiveKey(k); !ok || jobID != "b" || id != 3 {
				t.Errorf("active/f holds %q", k)
			}
			keys++
			return nil
		})
	})
	mustOK(t, err)
	if keys != 1 {
		t.Errorf("active/f holds %d keys, want 1", keys)
	}
}

// TestFollowupIndexFullRebuild: the full rebuild of an index (a store of a
// jobfs before any index) finds the follow-up marks of every run.
func TestFollowupIndexFullRebuild(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "a", 1000, "a")
	for i := 0; i < followupScan+5; i++ {
		mustCreateRun(t, s, "a", Run{Status: Completed, Queued: t0, Followup: i == 0})
	}
	err := s.db.Update(func(tx *bolt.Tx) error { // as an older jobfs left it
		if err := tx.DeleteBucket(bucketActive); err != nil {
			return err
		}
		d := tx.Bucket(bucketDaemon)
		if err := d.Delete(keyFollowups); err != nil {
			return err
		}
		return d.Delete(keyIndex)
	})
	mustOK(t, err)
	mustOK(t, s.db.Update(ensureIndex))
	mustOK(t, s.db.Update(ensureFollowups))
	if got := followupNames(t, s); !slices.Equal(got, []string{"a/1"}) {
		t.Errorf("FollowupRuns = %v, want [a/1] (older than the newest %d runs, still found)", got, followupScan)
	}
}

// TestNewestJobAndNames: NewestJob is the latest creation among the
// owner's jobs (read from created/, and from a kept list), across an
// owner whose number another's starts with (1000 and 10000), a delete of
// the newest and a rename; JobNames lists names and ids as Jobs does.
func TestNewestJobAndNames(t *testing.T) {
	s, _ := newTestStore(t)
	at := func(id string, owner Owner, name string, d time.Duration) {
		t.Helper()
		mustOK(t, s.CreateJob(Job{ID: id, Owner: owner, Name: name, Created: t0.Add(d)}))
	}
	at("a", 1000, "x", time.Hour)
	at("b", 1000, "y", 2*time.Hour)
	at("c", 10000, "z", 5*time.Hour)
	at("d", 100, "w", 9*time.Hour)
	want := func(owner Owner, d time.Duration, none bool) {
		t.Helper()
		for _, kept := range []bool{false, true} {
			s.jobs.changed()
			if kept {
				if _, err := s.Jobs(owner); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.NewestJob(owner)
			mustOK(t, err)
			if none && !got.IsZero() || !none && !got.Equal(t0.Add(d)) {
				t.Errorf("NewestJob(%d) (kept list %v) = %v, want %v (none %v)", owner, kept, got, t0.Add(d), none)
			}
		}
	}
	want(1000, 2*time.Hour, false)
	want(10000, 5*time.Hour, false)
	want(100, 9*time.Hour, false)
	want(7, 0, true)
	mustOK(t, s.RenameJob("b", "v"))
	want(1000, 2*time.Hour, false)
	mustOK(t, s.DeleteJob("b"))
	want(1000, time.Hour, false)
	mustOK(t, s.DeleteJob("a"))
	want(1000, 0, true)

	at("e", 1001, "q", 0)
	at("f", 1001, "p", 0)
	for _, kept := range []bool{false, true} {
		s.jobs.changed()
		if kept {
			if _, err := s.Jobs(1001); err != nil {
				t.Fatal(err)
			}
		}
		names, ids, err := s.JobNames(1001)
		mustOK(t, err)
		if !slices.Equal(names, []string{"p", "q"}) || !slices.Equal(ids, []string{"f", "e"}) {
			t.Errorf("JobNames (kept list %v) = %v %v, want [p q] [f e]", kept, names, ids)
		}
	}
}
