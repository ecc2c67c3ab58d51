package boltstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs/domain"
)

var t0 = time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)

func mustStoreJob(t *testing.T, s *Store, id string, owner Owner, name string) Job {
	t.Helper()
	j := Job{ID: id, Owner: owner, Name: name, Created: t0}
	if err := s.CreateJob(j); err != nil {
		t.Fatalf("create job %s: %v", name, err)
	}
	return j
}

func mustCreateRun(t *testing.T, s *Store, jobID string, r Run) Run {
	t.Helper()
	r, err := s.CreateRun(jobID, r)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func runIDs(t *testing.T, s *Store, jobID string) []uint64 {
	t.Helper()
	ids, err := s.RunIDs(jobID)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// storeTime is when key of job id last changed, zero when never.
func storeTime(t *testing.T, s *Store, id, key string) time.Time {
	t.Helper()
	times, err := s.Times(id)
	if err != nil {
		t.Fatal(err)
	}
	return times[key]
}

func TestStoreJobs(t *testing.T) {
	s, _ := newTestStore(t)
	a := mustStoreJob(t, s, "id-a", 1000, "report")
	mustStoreJob(t, s, "id-b", 1000, "alpha")
	mustStoreJob(t, s, "id-c", 1001, "report") // same name, other owner

	if got, err := s.JobByName(1000, "report"); err != nil || got != a {
		t.Errorf("JobByName = %+v, %v; want %+v", got, err, a)
	}
	if got, err := s.Job("id-a"); err != nil || got != a {
		t.Errorf("Job = %+v, %v; want %+v", got, err, a)
	}
	jobs, err := s.Jobs(1000)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range jobs {
		names = append(names, j.Name)
	}
	if !slices.Equal(names, []string{"alpha", "report"}) {
		t.Errorf("Jobs(1000) = %v, want [alpha report] (sorted, one owner)", names)
	}
	if all, err := s.AllJobs(); err != nil || len(all) != 3 {
		t.Errorf("AllJobs = %d jobs, %v; want 3", len(all), err)
	}

	err = s.CreateJob(Job{ID: "id-d", Owner: 1000, Name: "report"})
	if !errors.Is(err, domain.ErrExists) {
		t.Errorf("CreateJob of a taken name = %v, want domain.ErrExists", err)
	}
	if _, err := s.Job("id-d"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("a refused CreateJob left job id-d behind: %v", err)
	}
	for _, lookup := range []func() error{
		func() error { _, err := s.JobByName(1000, "nope"); return err },
		func() error { _, err := s.JobByName(1002, "report"); return err },
		func() error { _, err := s.Job("nope"); return err },
	} {
		if err := lookup(); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("lookup of a missing job = %v, want domain.ErrNotFound", err)
		}
	}
}

func TestStoreRenameJob(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "id-a", 1000, "old")
	mustStoreJob(t, s, "id-b", 1000, "taken")

	if err := s.RenameJob("id-a", "taken"); !errors.Is(err, domain.ErrExists) {
		t.Errorf("rename onto a taken name = %v, want domain.ErrExists", err)
	}
	if err := s.RenameJob("nope", "x"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("rename of a missing job = %v, want domain.ErrNotFound", err)
	}
	if err := s.RenameJob("id-a", "new"); err != nil {
		t.Fatal(err)
	}
	if j, err := s.JobByName(1000, "new"); err != nil || j.ID != "id-a" || j.Name != "new" {
		t.Errorf("JobByName(new) = %+v, %v", j, err)
	}
	if _, err := s.JobByName(1000, "old"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("old name still resolves: %v", err)
	}
	if j, _ := s.Job("id-a"); j.Name != "new" {
		t.Errorf("Job(id-a).Name = %q, want new", j.Name)
	}
	// The old name is free again.
	mustStoreJob(t, s, "id-c", 1000, "old")
}

func TestStoreDeleteJob(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "id-a", 1000, "doomed")
	mustOK(t, s.SetSetting("id-a", "config/timeout", "30s", t0))
	mustCreateRun(t, s, "id-a", Run{Status: Completed})

	mustOK(t, s.DeleteJob("id-a"))
	if _, err := s.Job("id-a"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Job after delete = %v, want domain.ErrNotFound", err)
	}
	if _, err := s.JobByName(1000, "doomed"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("JobByName after delete = %v, want domain.ErrNotFound", err)
	}
	if _, err := s.RunIDs("id-a"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("RunIDs after delete = %v, want domain.ErrNotFound", err)
	}
	if err := s.DeleteJob("id-a"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("second DeleteJob = %v, want domain.ErrNotFound", err)
	}
	// Same id and name again: nothing of the old job comes back.
	mustStoreJob(t, s, "id-a", 1000, "doomed")
	if _, ok, _ := s.Setting("id-a", "config/timeout"); ok {
		t.Error("a setting of the deleted job came back")
	}
	if r := mustCreateRun(t, s, "id-a", Run{}); r.ID != 1 {
		t.Errorf("first run of the new job has id %d, want 1", r.ID)
	}
}

func TestStoreSettings(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "id-a", 1000, "j")
	if v, ok, err := s.Setting("id-a", "config/timeout"); v != "" || ok || err != nil {
		t.Errorf("unset setting = %q, %v, %v", v, ok, err)
	}
	if got := storeTime(t, s, "id-a", "config/timeout"); !got.IsZero() {
		t.Errorf("SettingTime of a never set setting = %v, want zero", got)
	}
	mustOK(t, s.SetSetting("id-a", "config/timeout", "30s", t0))
	if v, ok, err := s.Setting("id-a", "config/timeout"); v != "30s" || !ok || err != nil {
		t.Errorf("setting = %q, %v, %v; want 30s", v, ok, err)
	}
	if got := storeTime(t, s, "id-a", "config/timeout"); !got.Equal(t0) {
		t.Errorf("SettingTime = %v, want %v", got, t0)
	}
	deleted := t0.Add(time.Minute)
	mustOK(t, s.DeleteSetting("id-a", "config/timeout", deleted))
	if _, ok, _ := s.Setting("id-a", "config/timeout"); ok {
		t.Error("setting still stored after DeleteSetting")
	}
	if got := storeTime(t, s, "id-a", "config/timeout"); !got.Equal(deleted) {
		t.Errorf("SettingTime after delete = %v, want %v (a reset is a change)", got, deleted)
	}
	if err := s.SetSetting("nope", "k", "v", t0); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("SetSetting on a missing job = %v, want domain.ErrNotFound", err)
	}
	if _, _, err := s.Setting("nope", "k"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Setting on a missing job = %v, want domain.ErrNotFound", err)
	}
}

// TestStoreEmptySetting: an empty value is a stored value, distinct from
// no value (which reads as the default).
func TestStoreEmptySetting(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "id-a", 1000, "j")
	mustOK(t, s.SetSetting("id-a", "description", "", t0))
	if v, ok, err := s.Setting("id-a", "description"); v != "" || !ok || err != nil {
		t.Errorf("Setting after SetSetting(\"\") = %q, stored=%v, %v; want stored and empty", v, ok, err)
	}
}

func TestStoreRunIDs(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "a", 1000, "a")
	mustStoreJob(t, s, "b", 1000, "b")

	if id, err := s.LatestRun("a"); id != 0 || err != nil {
		t.Errorf("LatestRun with no runs = %d, %v; want 0", id, err)
	}
	for want := uint64(1); want <= 3; want++ {
		if r := mustCreateRun(t, s, "a", Run{Status: Completed}); r.ID != want {
			t.Fatalf("run id %d, want %d", r.ID, want)
		}
	}
	if r := mustCreateRun(t, s, "b", Run{}); r.ID != 1 {
		t.Errorf("first run of another job has id %d, want 1 (ids are per job)", r.ID)
	}
	// Deleting the newest run does not free its id.
	mustOK(t, s.DeleteRun("a", 3))
	if id, _ := s.LatestRun("a"); id != 2 {
		t.Errorf("LatestRun after deleting 3 = %d, want 2", id)
	}
	if r := mustCreateRun(t, s, "a", Run{}); r.ID != 4 {
		t.Errorf("run after deleting 3 has id %d, want 4 (ids are never reused)", r.ID)
	}
	mustOK(t, s.DeleteRun("a", 2))
	if got := runIDs(t, s, "a"); !slices.Equal(got, []uint64{1, 4}) {
		t.Errorf("RunIDs = %v, want [1 4]", got)
	}
	if id, _ := s.LatestRun("a"); id != 4 {
		t.Errorf("LatestRun = %d, want 4", id)
	}
	if err := s.DeleteRun("a", 2); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("second DeleteRun = %v, want domain.ErrNotFound", err)
	}
	if _, err := s.Run("a", 2); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Run of a deleted run = %v, want domain.ErrNotFound", err)
	}
	if _, err := s.CreateRun("nope", Run{}); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("CreateRun on a missing job = %v, want domain.ErrNotFound", err)
	}
}

// TestStoreRunIDsPastByteBoundary: ids are big-endian keys, so RunIDs and
// LatestRun stay numeric past 255 and 65535.
func TestStoreRunIDsPastByteBoundary(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "a", 1000, "a")
	for i := 0; i < 300; i++ {
		mustCreateRun(t, s, "a", Run{Status: Completed})
	}
	ids := runIDs(t, s, "a")
	if len(ids) != 300 || !slices.IsSorted(ids) || ids[0] != 1 || ids[299] != 300 {
		t.Errorf("RunIDs = %d ids from %d to %d, sorted %v", len(ids), ids[0], ids[len(ids)-1], slices.IsSorted(ids))
	}
	if id, _ := s.LatestRun("a"); id != 300 {
		t.Errorf("LatestRun = %d, want 300", id)
	}
}

func TestStoreUpdateRun(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "a", 1000, "a")
	r := mustCreateRun(t, s, "a", Run{Status: Pending, Trigger: Manual, Queued: t0})
	got, err := s.UpdateRun("a", r.ID, func(r *Run) {
		r.Status, r.StartedAt, r.ExitCode = Completed, t0.Add(time.Second), intp(0)
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.Run("a", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, stored) || stored.Status != Completed || *stored.ExitCode != 0 || stored.Trigger != Manual {
		t.Errorf("UpdateRun returned %+v, stored %+v", got, stored)
	}
	if _, err := s.UpdateRun("a", 99, func(*Run) {}); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("UpdateRun of a missing run = %v, want domain.ErrNotFound", err)
	}
}

func TestStoreActiveRuns(t *testing.T) {
	s, _ := newTestStore(t)
	mustStoreJob(t, s, "a", 1000, "a")
	mustStoreJob(t, s, "b", 1001, "b")
	mustCreateRun(t, s, "a", Run{Status: Completed, Queued: t0})
	mustCreateRun(t, s, "a", Run{Status: Running, Queued: t0.Add(3 * time.Second)})
	mustCreateRun(t, s, "b", Run{Status: Pending, Queued: t0.Add(1 * time.Second)})
	mustCreateRun(t, s, "b", Run{Status: Failed, Queued: t0.Add(2 * time.Second)})
	mustCreateRun(t, s, "b", Run{Status: Running, Queued: t0.Add(4 * time.Second)})
	for _, st := range []Status{Timeout, Cancelled, Skipped} {
		mustCreateRun(t, s, "a", Run{Status: st, Queued: t0})
	}

	refs, err := s.ActiveRuns()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.JobID+"/"+itoa(r.Run.ID)+"/"+string(r.Run.Status))
	}
	want := []string{"b/1/PENDING", "a/2/RUNNING", "b/3/RUNNING"}
	if !slices.Equal(got, want) {
		t.Errorf("ActiveRuns = %v, want %v (oldest queued first)", got, want)
	}
}

func TestStoreReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jobfs.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustStoreJob(t, s, "a", 1000, "kept")
	mustOK(t, s.SetSetting("a", "config/type", "script", t0))
	mustCreateRun(t, s, "a", Run{Status: Completed, Queued: t0, ExitCode: intp(3), Error: "step script exited with code 3"})
	mustCreateRun(t, s, "a", Run{Status: Failed, Queued: t0})
	mustOK(t, s.DeleteRun("a", 2))
	mustOK(t, s.Close())

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Error(err)
		}
		s.Close()
	})
	if j, err := s.JobByName(1000, "kept"); err != nil || j.ID != "a" || !j.Created.Equal(t0) {
		t.Errorf("job after reopen = %+v, %v", j, err)
	}
	if v, _, _ := s.Setting("a", "config/type"); v != "script" {
		t.Errorf("setting after reopen = %q", v)
	}
	r, err := s.Run("a", 1)
	if err != nil || r.Status != Completed || r.ExitCode == nil || *r.ExitCode != 3 || !r.Queued.Equal(t0) || r.Error == "" {
		t.Errorf("run after reopen = %+v, %v", r, err)
	}
	if r := mustCreateRun(t, s, "a", Run{}); r.ID != 3 {
		t.Errorf("run after reopen has id %d, want 3 (the sequence survives)", r.ID)
	}
}

// TestOpenStoreInUse: a second daemon on the same state fails with a clear
// error instead of hanging.
func TestOpenStoreInUse(t *testing.T) {
	t.Parallel()
	_, path := newTestStore(t)
	type result struct {
		s   *Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Open(path)
		done <- result{s, err}
	}()
	select {
	case res := <-done:
		if res.err == nil {
			res.s.Close()
			t.Fatal("second OpenStore succeeded while the first is open")
		}
		if !strings.Contains(res.err.Error(), "in use by another jobfs daemon") {
			t.Errorf("error = %q, want it to say the file is in use", res.err)
		}
		if want := fmt.Sprintf("(pid %d: ", os.Getpid()); !strings.Contains(res.err.Error(), want) {
			t.Errorf("error = %q, want it to name the holder %s...)", res.err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("second OpenStore hangs")
	}
}

func TestRecordStatusReadsTheRunsOwn(t *testing.T) {
	code := 0
	r := Run{ID: 7, Status: Completed, Steps: []Step{{Label: "a", Status: Running}}, ExitCode: &code}
	v, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := recordStatus(v); !ok || st != Completed {
		t.Errorf("recordStatus(%s) = %q, %v; want COMPLETED", v, st, ok)
	}
	if _, ok := recordStatus([]byte(`{"id":1}`)); ok {
		t.Errorf("recordStatus of a record with no status reported one")
	}
	// Field order is not relied on: a step's status before the run's.
	other := `{"steps":[{"label":"a","status":"RUNNING"}],"id":7,"status":"COMPLETED"}`
	if st, ok := recordStatus([]byte(other)); !ok || st != Completed {
		t.Errorf("recordStatus(%s) = %q, %v; want COMPLETED", other, st, ok)
	}
}
