// Package storetest is the contract every jobs.Store passes: the embedded
// bbolt store runs it in this package's tests, a store kept elsewhere (etcd)
// runs it against its real server.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs"
)

// Open opens a new, empty store; the opener closes it at the test's end.
type Open func(t *testing.T) jobs.Store

// Reopen closes s and opens what it kept again, as a restarted daemon
// would (closed at the test's end too).
type Reopen func(t *testing.T, s jobs.Store) jobs.Store

// StoreContract runs the contract on stores made by open; reopen checks
// that what was committed survives a restart.
func StoreContract(t *testing.T, open Open, reopen Reopen) {
	tests := []struct {
		name string
		run  func(*testing.T, jobs.Store)
	}{
		{"Jobs", testJobs},
		{"Settings", testSettings},
		{"DenseRunIDs", testDenseRunIDs},
		{"UpdateRunAtomic", testUpdateRunAtomic},
		{"DeleteRun", testDeleteRun},
		{"ActiveRuns", testActiveRuns},
		{"KV", testKV},
		{"Snapshot", testSnapshot},
		{"FollowUpOnce", testFollowUpOnce},
		{"AfterDoneOnce", testAfterDoneOnce},
		{"Watch", testWatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
	t.Run("Reopen", func(t *testing.T) { testReopen(t, open(t), reopen) })
}

var t0 = time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", what, err, want)
	}
}

func mustJob(t *testing.T, s jobs.Store, id string, owner jobs.Owner, name string) jobs.Job {
	t.Helper()
	j := jobs.Job{ID: id, Owner: owner, Name: name, Created: t0}
	mustOK(t, s.CreateJob(j))
	return j
}

func mustRun(t *testing.T, s jobs.Store, jobID string, st jobs.Status, queued time.Time) jobs.Run {
	t.Helper()
	r, err := s.CreateRun(jobID, jobs.Run{Status: st, Trigger: jobs.Manual, Queued: queued})
	mustOK(t, err)
	return r
}

func names(list []jobs.Job) []string {
	var out []string
	for _, j := range list {
		out = append(out, j.Name)
	}
	return out
}

func testJobs(t *testing.T, s jobs.Store) {
	a := mustJob(t, s, "ida", 1000, "report")
	mustJob(t, s, "idb", 1000, "backup")
	mustJob(t, s, "idc", 2000, "report") // another owner may use the name
	wantErr(t, "CreateJob of a taken name", s.CreateJob(jobs.Job{ID: "idd", Owner: 1000, Name: "report"}), jobs.ErrExists)
	if got, err := s.JobByName(1000, "report"); err != nil || got != a {
		t.Errorf("JobByName = %+v, %v; want %+v", got, err, a)
	}
	if got, err := s.Job("ida"); err != nil || got != a {
		t.Errorf("Job = %+v, %v; want %+v", got, err, a)
	}
	_, err := s.Job("idd")
	wantErr(t, "Job of the refused job", err, jobs.ErrNotFound)
	list, err := s.Jobs(1000)
	mustOK(t, err)
	if got := names(list); !slices.Equal(got, []string{"backup", "report"}) {
		t.Errorf("Jobs(1000) = %v, want [backup report] (sorted)", got)
	}
	all, err := s.AllJobs()
	mustOK(t, err)
	if len(all) != 3 {
		t.Errorf("AllJobs = %v, want 3 jobs", names(all))
	}

	wantErr(t, "RenameJob onto a taken name", s.RenameJob("ida", "backup"), jobs.ErrExists)
	mustOK(t, s.RenameJob("ida", "daily"))
	_, err = s.JobByName(1000, "report")
	wantErr(t, "JobByName of the old name", err, jobs.ErrNotFound)
	if got, err := s.JobByName(1000, "daily"); err != nil || got.ID != "ida" {
		t.Errorf("JobByName(daily) = %+v, %v", got, err)
	}
	mustJob(t, s, "ide", 1000, "report") // the old name is free

	mustRun(t, s, "ida", jobs.Running, t0)
	mustOK(t, s.DeleteJob("ida"))
	_, err = s.Job("ida")
	wantErr(t, "Job after DeleteJob", err, jobs.ErrNotFound)
	_, err = s.JobByName(1000, "daily")
	wantErr(t, "JobByName after DeleteJob", err, jobs.ErrNotFound)
	_, err = s.Run("ida", 1)
	wantErr(t, "Run of a deleted job", err, jobs.ErrNotFound)
	wantErr(t, "DeleteJob again", s.DeleteJob("ida"), jobs.ErrNotFound)
	wantErr(t, "RenameJob of a deleted job", s.RenameJob("ida", "x"), jobs.ErrNotFound)
	active, err := s.ActiveRuns()
	mustOK(t, err)
	if len(active) != 0 {
		t.Errorf("ActiveRuns after DeleteJob = %v, want none", active)
	}
	mustJob(t, s, "idf", 1000, "daily") // its name is free
}

func testSettings(t *testing.T, s jobs.Store) {
	mustJob(t, s, "ida", 1000, "a")
	mustJob(t, s, "idb", 1000, "b")
	if _, set, err := s.Setting("ida", "config/timeout"); err != nil || set {
		t.Errorf("Setting never set = set %v, %v", set, err)
	}
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	mustOK(t, s.SetSetting("ida", "config/timeout", "5m", t1))
	if v, set, err := s.Setting("ida", "config/timeout"); err != nil || !set || v != "5m" {
		t.Errorf("Setting = %q, %v, %v; want 5m", v, set, err)
	}
	wantTime(t, s, "ida", "config/timeout", t1)
	mustOK(t, s.DeleteSetting("ida", "config/timeout", t2))
	if _, set, err := s.Setting("ida", "config/timeout"); err != nil || set {
		t.Errorf("Setting after DeleteSetting = set %v, %v", set, err)
	}
	wantTime(t, s, "ida", "config/timeout", t2) // a delete is a change too
	given := t1.Add(-time.Hour)
	mustOK(t, s.SetTime("ida", "config/timeout", given)) // touch -d: the time alone
	wantTime(t, s, "ida", "config/timeout", given)
	if _, set, err := s.Setting("ida", "config/timeout"); err != nil || set {
		t.Errorf("Setting after SetTime = set %v, %v; want still unset", set, err)
	}
	wantErr(t, "SetTime of no job", s.SetTime("nope", "config/timeout", t1), jobs.ErrNotFound)
	_, _, err := s.Setting("nope", "config/timeout")
	wantErr(t, "Setting of no job", err, jobs.ErrNotFound)
	wantErr(t, "SetSetting of no job", s.SetSetting("nope", "config/timeout", "1m", t1), jobs.ErrNotFound)

	mustOK(t, s.SetSetting("ida", "config/schedule", "@hourly", t1))
	mustOK(t, s.SetSetting("idb", "config/schedule", "@daily", t1))
	wantScheduled(t, s, "a", "b")
	mustOK(t, s.DeleteSetting("idb", "config/schedule", t2))
	wantScheduled(t, s, "a")
	mustOK(t, s.DeleteJob("ida"))
	wantScheduled(t, s)
}

func wantTime(t *testing.T, s jobs.Store, id, key string, want time.Time) {
	t.Helper()
	times, err := s.Times(id)
	mustOK(t, err)
	if got := times[key]; !got.Equal(want) {
		t.Errorf("Times(%s)[%s] = %v, want %v", id, key, got, want)
	}
}

func wantScheduled(t *testing.T, s jobs.Store, want ...string) {
	t.Helper()
	list, err := s.ScheduledJobs()
	mustOK(t, err)
	got := names(list)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("ScheduledJobs = %v, want %v", got, want)
	}
}

// testDenseRunIDs: many goroutines create runs at once; the ids are
// 1..N, each given once.
func testDenseRunIDs(t *testing.T, s jobs.Store) {
	mustJob(t, s, "ida", 1000, "a")
	const workers, each = 16, 8
	ids := make(chan uint64, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				r, err := s.CreateRun("ida", jobs.Run{Status: jobs.Pending, Queued: t0})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- r.ID
			}
		})
	}
	wg.Wait()
	close(ids)
	var got []uint64
	for id := range ids {
		got = append(got, id)
	}
	slices.Sort(got)
	want := make([]uint64, workers*each)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ids given = %v, want 1..%d each once", got, len(want))
	}
	stored, err := s.RunIDs("ida")
	mustOK(t, err)
	if !slices.Equal(stored, want) {
		t.Errorf("RunIDs = %v, want 1..%d oldest first", stored, len(want))
	}
	if n, err := s.LatestRun("ida"); err != nil || n != uint64(len(want)) {
		t.Errorf("LatestRun = %d, %v; want %d", n, err, len(want))
	}
	mustJob(t, s, "idb", 1000, "b")
	if r := mustRun(t, s, "idb", jobs.Pending, t0); r.ID != 1 {
		t.Errorf("first run of another job = %d, want 1 (ids are per job)", r.ID)
	}
	if n, err := s.LatestRun("idb"); err != nil || n != 1 {
		t.Errorf("LatestRun(b) = %d, %v; want 1", n, err)
	}
	_, err = s.CreateRun("nope", jobs.Run{})
	wantErr(t, "CreateRun of no job", err, jobs.ErrNotFound)
}

// testUpdateRunAtomic: concurrent read-modify-writes of one run lose none.
func testUpdateRunAtomic(t *testing.T, s jobs.Store) {
	mustJob(t, s, "ida", 1000, "a")
	r := mustRun(t, s, "ida", jobs.Running, t0)
	const n = 40
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := s.UpdateRun("ida", r.ID, func(r *jobs.Run) { r.Attempt++ }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.Run("ida", r.ID)
	mustOK(t, err)
	if got.Attempt != n {
		t.Errorf("after %d concurrent increments Attempt = %d", n, got.Attempt)
	}
	_, err = s.UpdateRun("ida", 99, func(*jobs.Run) {})
	wantErr(t, "UpdateRun of no run", err, jobs.ErrNotFound)
}

func testDeleteRun(t *testing.T, s jobs.Store) {
	mustJob(t, s, "ida", 1000, "a")
	for range 3 {
		mustRun(t, s, "ida", jobs.Completed, t0)
	}
	mustOK(t, s.DeleteRun("ida", 3))
	mustOK(t, s.DeleteRun("ida", 1))
	wantErr(t, "DeleteRun again", s.DeleteRun("ida", 1), jobs.ErrNotFound)
	_, err := s.Run("ida", 1)
	wantErr(t, "Run deleted", err, jobs.ErrNotFound)
	ids, err := s.RunIDs("ida")
	mustOK(t, err)
	if !slices.Equal(ids, []uint64{2}) {
		t.Errorf("RunIDs = %v, want [2]", ids)
	}
	times, err := s.Times("ida")
	mustOK(t, err)
	if times[jobs.TimeRuns].IsZero() {
		t.Errorf("Times has no %s after DeleteRun", jobs.TimeRuns)
	}
	if r := mustRun(t, s, "ida", jobs.Pending, t0); r.ID != 4 {
		t.Errorf("run after deleting the newest = %d, want 4 (ids never reused)", r.ID)
	}
}

// testActiveRuns: ActiveRuns lists exactly the runs that have not ended,
// however they got there, and none of the many ended ones.
func testActiveRuns(t *testing.T, s jobs.Store) {
	mustJob(t, s, "ida", 1000, "a")
	mustJob(t, s, "idb", 1000, "b")
	for i := range 200 {
		mustRun(t, s, "ida", jobs.Completed, t0.Add(time.Duration(i)*time.Second))
	}
	late := t0.Add(time.Hour)
	a1 := mustRun(t, s, "ida", jobs.Running, late)
	a2 := mustRun(t, s, "ida", jobs.Pending, late.Add(time.Second))
	b1 := mustRun(t, s, "idb", jobs.Pending, late.Add(2*time.Second))
	b2 := mustRun(t, s, "idb", jobs.Pending, late.Add(3*time.Second))
	ended := mustRun(t, s, "idb", jobs.Running, late.Add(4*time.Second))
	_, err := s.UpdateRun("idb", ended.ID, func(r *jobs.Run) { r.Status = jobs.Failed })
	mustOK(t, err)
	mustOK(t, s.DeleteRun("idb", b2.ID))
	// An ended run made active again (a retry kept PENDING) is listed.
	back := mustRun(t, s, "ida", jobs.Completed, late.Add(5*time.Second))
	_, err = s.UpdateRun("ida", back.ID, func(r *jobs.Run) { r.Status = jobs.Pending })
	mustOK(t, err)

	wantActive(t, s, fmt.Sprintf("ida/%d", a1.ID), fmt.Sprintf("ida/%d", a2.ID), fmt.Sprintf("idb/%d", b1.ID), fmt.Sprintf("ida/%d", back.ID))
	for _, id := range []uint64{a1.ID, a2.ID} {
		_, err := s.UpdateRun("ida", id, func(r *jobs.Run) { r.Status = jobs.Cancelled })
		mustOK(t, err)
	}
	wantActive(t, s, fmt.Sprintf("idb/%d", b1.ID), fmt.Sprintf("ida/%d", back.ID))
}

func wantActive(t *testing.T, s jobs.Store, want ...string) {
	t.Helper()
	refs, err := s.ActiveRuns()
	mustOK(t, err)
	var got []string
	for _, r := range refs {
		if r.Run.Status.Terminal() {
			t.Errorf("ActiveRuns lists %s/%d, %s", r.JobID, r.Run.ID, r.Run.Status)
		}
		got = append(got, fmt.Sprintf("%s/%d", r.JobID, r.Run.ID))
	}
	if !slices.Equal(got, want) {
		t.Errorf("ActiveRuns = %v, want %v (oldest first)", got, want)
	}
}

func testKV(t *testing.T, s jobs.Store) {
	mustJob(t, s, "ida", 1000, "a")
	stored, err := s.PutKV("ida", "shares", "bob", []byte("viewer"), false)
	if err != nil || !stored {
		t.Fatalf("PutKV new = %v, %v", stored, err)
	}
	if stored, err := s.PutKV("ida", "shares", "bob", []byte("editor"), false); err != nil || stored {
		t.Errorf("PutKV without replace of a stored key = %v, %v; want not stored", stored, err)
	}
	wantKV(t, s, "shares", map[string]string{"bob": "viewer"})
	if stored, err := s.PutKV("ida", "shares", "bob", []byte("editor"), true); err != nil || !stored {
		t.Errorf("PutKV replace = %v, %v", stored, err)
	}
	_, err = s.PutKV("ida", "shares", "eve", []byte("viewer"), true)
	mustOK(t, err)
	wantKV(t, s, "shares", map[string]string{"bob": "editor", "eve": "viewer"})
	times, err := s.Times("ida")
	mustOK(t, err)
	for _, k := range []string{jobs.TimeShares, jobs.TimeShares + "bob", jobs.TimeShares + "eve"} {
		if times[k].IsZero() {
			t.Errorf("Times has no %s after PutKV", k)
		}
	}
	if found, err := s.DeleteKV("ida", "shares", "bob"); err != nil || !found {
		t.Errorf("DeleteKV = %v, %v", found, err)
	}
	if found, err := s.DeleteKV("ida", "shares", "bob"); err != nil || found {
		t.Errorf("DeleteKV again = %v, %v; want not found", found, err)
	}
	wantKV(t, s, "shares", map[string]string{"eve": "viewer"})
	wantKV(t, s, "env", map[string]string{}) // a bucket never written
	_, err = s.PutKV("nope", "shares", "bob", nil, true)
	wantErr(t, "PutKV of no job", err, jobs.ErrNotFound)
}

func wantKV(t *testing.T, s jobs.Store, bucket string, want map[string]string) {
	t.Helper()
	kv, err := s.ListKV("ida", bucket)
	mustOK(t, err)
	got := map[string]string{}
	for k, v := range kv {
		got[k] = string(v)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ListKV(%s) = %v, want %v", bucket, got, want)
	}
}

func testSnapshot(t *testing.T, s jobs.Store) {
	j := mustJob(t, s, "ida", 1000, "a")
	mustOK(t, s.SetSetting("ida", "config/type", "python", t0))
	_, err := s.PutKV("ida", "env", "token", []byte(`{"runtime":"python"}`), true)
	mustOK(t, err)
	snap, err := s.Snapshot("ida")
	mustOK(t, err)
	if snap.Job != j || snap.Settings["config/type"] != "python" || string(snap.Env["token"]) != `{"runtime":"python"}` {
		t.Errorf("Snapshot = %+v", snap)
	}
	if _, ok := snap.Settings["config/timeout"]; ok {
		t.Error("Snapshot holds a setting never stored")
	}
	times, err := s.Times("ida")
	mustOK(t, err)
	if times[jobs.TimeEnv+"token"].IsZero() || times[jobs.TimeEnv].IsZero() {
		t.Errorf("Times after an env PutKV = %v, want %s and %stoken", times, jobs.TimeEnv, jobs.TimeEnv)
	}
	_, err = s.Snapshot("nope")
	wantErr(t, "Snapshot of no job", err, jobs.ErrNotFound)
}

// endedFollowup stores an ended run whose follow-ups are due.
func endedFollowup(t *testing.T, s jobs.Store, jobID string) jobs.Run {
	t.Helper()
	r, err := s.CreateRun(jobID, jobs.Run{Status: jobs.Failed, Queued: t0, Followup: true})
	mustOK(t, err)
	return r
}

// testFollowUpOnce: racing FollowUps of one run make one run.
func testFollowUpOnce(t *testing.T, s jobs.Store) {
	mustJob(t, s, "ida", 1000, "a")
	mustJob(t, s, "idb", 1000, "b")
	src := endedFollowup(t, s, "ida")
	plain := mustRun(t, s, "ida", jobs.Completed, t0)
	refs, err := s.FollowupRuns()
	mustOK(t, err)
	if len(refs) != 1 || refs[0].JobID != "ida" || refs[0].Run.ID != src.ID {
		t.Errorf("FollowupRuns = %v, want run %d of ida", refs, src.ID)
	}
	var made sync.Map
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			r, ok, err := s.FollowUp(jobs.RunID{JobID: "ida", ID: src.ID}, "hook:b", "idb", jobs.Run{Status: jobs.Pending, Trigger: jobs.Hook, Queued: t0})
			if err != nil {
				t.Error(err)
			}
			if ok {
				made.Store(r.ID, true)
			}
		})
	}
	wg.Wait()
	n := 0
	made.Range(func(any, any) bool { n++; return true })
	ids, err := s.RunIDs("idb")
	mustOK(t, err)
	if n != 1 || !slices.Equal(ids, []uint64{1}) {
		t.Errorf("12 racing FollowUps made %d, job b has runs %v; want exactly one", n, ids)
	}
	got, err := s.Run("ida", src.ID)
	mustOK(t, err)
	if !slices.Equal(got.FollowedUp, []string{"hook:b"}) {
		t.Errorf("FollowedUp = %v, want [hook:b]", got.FollowedUp)
	}
	// Another action of the same run is its own; a run that is no
	// follow-up makes none.
	if _, ok, err := s.FollowUp(jobs.RunID{JobID: "ida", ID: src.ID}, "retry", "ida", jobs.Run{Status: jobs.Pending}); err != nil || !ok {
		t.Errorf("FollowUp of a second action = %v, %v", ok, err)
	}
	if _, ok, err := s.FollowUp(jobs.RunID{JobID: "ida", ID: plain.ID}, "retry", "ida", jobs.Run{Status: jobs.Pending}); err != nil || ok {
		t.Errorf("FollowUp of a run without Followup = %v, %v; want none made", ok, err)
	}
	_, _, err = s.FollowUp(jobs.RunID{JobID: "ida", ID: 99}, "retry", "ida", jobs.Run{})
	wantErr(t, "FollowUp of no run", err, jobs.ErrNotFound)
}

// testAfterDoneOnce: each upstream counts once however often it is told,
// and the set's downstream run is made once.
func testAfterDoneOnce(t *testing.T, s jobs.Store) {
	for _, id := range []string{"up1", "up2", "down"} {
		mustJob(t, s, id, 1000, id)
	}
	want := []string{"up1", "up2"}
	next := func(runs map[string]uint64) (jobs.Run, bool) {
		return jobs.Run{Status: jobs.Pending, Queued: t0, TriggeredBy: fmt.Sprint(runs)}, true
	}
	r1, r2 := endedFollowup(t, s, "up1"), endedFollowup(t, s, "up2")
	const action = "after:down"
	res, err := s.AfterDone(jobs.RunID{JobID: "up1", ID: r1.ID}, action, "down", want, next)
	mustOK(t, err)
	if !res.Counted || res.Complete || res.Have != 1 {
		t.Errorf("first upstream: %+v, want counted, 1 of 2", res)
	}
	res, err = s.AfterDone(jobs.RunID{JobID: "up1", ID: r1.ID}, action, "down", want, next)
	mustOK(t, err)
	if res.Counted {
		t.Errorf("the same upstream run again: %+v, want not counted", res)
	}
	var started sync.Map
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			res, err := s.AfterDone(jobs.RunID{JobID: "up2", ID: r2.ID}, action, "down", want, next)
			if err != nil {
				t.Error(err)
			}
			if res.Counted {
				started.Store(res.Run.ID, res)
			}
		})
	}
	wg.Wait()
	n := 0
	started.Range(func(k, v any) bool {
		n++
		res := v.(jobs.AfterResult)
		if !res.Complete || res.Run.ID != 1 || res.Runs["up1"] != r1.ID || res.Runs["up2"] != r2.ID {
			t.Errorf("completing upstream: %+v", res)
		}
		return true
	})
	ids, err := s.RunIDs("down")
	mustOK(t, err)
	if n != 1 || !slices.Equal(ids, []uint64{1}) {
		t.Errorf("8 racing AfterDones counted %d, down has runs %v; want one", n, ids)
	}
	// The set starts over: a new run of up1 counts 1 of 2 again; a set
	// completed without a run (next says no) makes none.
	r3, r4 := endedFollowup(t, s, "up1"), endedFollowup(t, s, "up2")
	_, err = s.AfterDone(jobs.RunID{JobID: "up1", ID: r3.ID}, action, "down", want, next)
	mustOK(t, err)
	res, err = s.AfterDone(jobs.RunID{JobID: "up2", ID: r4.ID}, action, "down", want, func(map[string]uint64) (jobs.Run, bool) { return jobs.Run{}, false })
	mustOK(t, err)
	if !res.Complete || res.Run.ID != 0 {
		t.Errorf("set completed without a run: %+v", res)
	}
	if ids, _ := s.RunIDs("down"); len(ids) != 1 {
		t.Errorf("down has runs %v after a set completed without a run", ids)
	}
}

// testWatch: every commit shows on the feed, a refused write does not,
// and the channel closes when the context ends.
func testWatch(t *testing.T, s jobs.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Watch(ctx)
	other, cancelOther := context.WithCancel(context.Background())
	och := s.Watch(other)
	cancelOther()
	for range och {
		t.Error("a change on a watch whose context ended")
	}

	mustJob(t, s, "ida", 1000, "a")
	wantChange(t, ch, jobs.Change{Job: "ida"})
	_ = s.CreateJob(jobs.Job{ID: "idz", Owner: 1000, Name: "a"}) // refused: ErrExists
	mustOK(t, s.SetSetting("ida", "config/timeout", "1m", t0))
	wantChange(t, ch, jobs.Change{Job: "ida", Key: "config/timeout"})
	r := mustRun(t, s, "ida", jobs.Pending, t0)
	wantChange(t, ch, jobs.Change{Job: "ida", Key: "runs/1", Run: r.ID})
	_, err := s.UpdateRun("ida", r.ID, func(r *jobs.Run) { r.Status = jobs.Completed })
	mustOK(t, err)
	wantChange(t, ch, jobs.Change{Job: "ida", Key: "runs/1", Run: r.ID})
	_, err = s.PutKV("ida", "shares", "bob", []byte("viewer"), true)
	mustOK(t, err)
	wantChange(t, ch, jobs.Change{Job: "ida", Key: "shares/bob"})
	mustOK(t, s.DeleteRun("ida", r.ID))
	wantChange(t, ch, jobs.Change{Job: "ida", Key: "runs/1", Run: r.ID, Deleted: true})
	mustOK(t, s.RenameJob("ida", "b"))
	wantChange(t, ch, jobs.Change{Job: "ida", Key: "meta"})
	mustOK(t, s.DeleteJob("ida"))
	wantChange(t, ch, jobs.Change{Job: "ida", Deleted: true})
	cancel()
	for c := range ch { // closes: nothing but what was committed before
		t.Errorf("change after the last commit: %+v", c)
	}
}

func wantChange(t *testing.T, ch <-chan jobs.Change, want jobs.Change) {
	t.Helper()
	select {
	case got, ok := <-ch:
		if !ok || got != want {
			t.Errorf("change = %+v (open %v), want %+v", got, ok, want)
		}
	case <-time.After(10 * time.Second): // a hang, not a measure
		t.Fatalf("no change, want %+v", want)
	}
}

// testReopen: what was committed is there after a restart.
func testReopen(t *testing.T, s jobs.Store, reopen Reopen) {
	a := mustJob(t, s, "ida", 1000, "a")
	mustOK(t, s.SetSetting("ida", "config/schedule", "@hourly", t0))
	_, err := s.PutKV("ida", "shares", "bob", []byte("viewer"), true)
	mustOK(t, err)
	done := mustRun(t, s, "ida", jobs.Completed, t0)
	live := mustRun(t, s, "ida", jobs.Running, t0.Add(time.Second))
	watch := s.Watch(context.Background())

	s = reopen(t, s)
	for c := range watch {
		t.Errorf("change on a watch of the closed store: %+v", c)
	}
	if got, err := s.JobByName(1000, "a"); err != nil || got != a {
		t.Errorf("JobByName after reopen = %+v, %v", got, err)
	}
	if v, set, err := s.Setting("ida", "config/schedule"); err != nil || !set || v != "@hourly" {
		t.Errorf("Setting after reopen = %q %v %v", v, set, err)
	}
	wantTime(t, s, "ida", "config/schedule", t0)
	wantScheduled(t, s, "a")
	wantKV(t, s, "shares", map[string]string{"bob": "viewer"})
	if r, err := s.Run("ida", done.ID); err != nil || r.Status != jobs.Completed {
		t.Errorf("Run after reopen = %+v, %v", r, err)
	}
	wantActive(t, s, fmt.Sprintf("ida/%d", live.ID))
	if r := mustRun(t, s, "ida", jobs.Pending, t0); r.ID != 3 {
		t.Errorf("run after reopen = %d, want 3", r.ID)
	}
}
