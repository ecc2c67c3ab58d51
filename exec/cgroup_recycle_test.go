package exec

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRecycleRunFolder: on cgroup v1 a finished run's folder becomes the
// job's spare, which the next run's folder is renamed from; a folder with
// a step's left in it, or beside a spare already there, is not recycled;
// Prune removes a job's folder with its spare. As root, real cgroups.
func TestRecycleRunFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cg, err := DetectCgroups()
	if err != nil {
		t.Skip(err)
	}
	v1, ok := cg.(cgroupsV1)
	if !ok {
		if cg.Recycle("jobfs-test-recycle/job/1") == nil {
			t.Error("cgroup v2 recycled a folder; it renames no cgroup")
		}
		t.Skip("cgroup v2: nothing is recycled")
	}
	const job = "jobfs-test-recycle/job"
	t.Cleanup(func() { _ = cg.Clean("jobfs-test-recycle") })
	exists := func(rel string) bool {
		for _, n := range v1.have {
			if _, err := os.Stat(v1.dir(n, rel)); err != nil {
				return false
			}
		}
		return true
	}
	g, err := cg.Create(job+"/1/step", Limits{Pids: 64})
	if err != nil {
		t.Fatal(err)
	}
	if err := cg.Recycle(job + "/1"); err == nil {
		t.Fatal("a run's folder with a step's folder in it was recycled")
	}
	if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := cg.Recycle(job + "/1"); err != nil {
		t.Fatalf("recycle an empty run folder: %v", err)
	}
	if exists(job+"/1") || !exists(job+"/"+Spare) {
		t.Fatalf("after Recycle: run folder there %v, spare there %v; want the run's folder renamed to the spare", exists(job+"/1"), exists(job+"/"+Spare))
	}
	if _, err := cg.Create(job+"/3/step", Limits{}); err != nil { // a run that started without the spare
		t.Fatal(err)
	}
	cg.Reuse(job + "/2")
	if !exists(job+"/2") || exists(job+"/"+Spare) {
		t.Fatalf("after Reuse: run folder there %v, spare there %v; want the spare renamed to the run's", exists(job+"/2"), exists(job+"/"+Spare))
	}
	cg.Reuse(job + "/4") // no spare: nothing to do
	if exists(job + "/4") {
		t.Error("Reuse with no spare made a run folder")
	}
	if err := cg.Recycle(job + "/2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(v1.dir(v1.have[0], job+"/3/step"))); err != nil {
		t.Fatal(err)
	}
	for _, n := range v1.have[1:] {
		_ = os.Remove(v1.dir(n, job+"/3/step"))
	}
	if err := cg.Recycle(job + "/3"); err == nil {
		t.Error("a run folder was recycled with a spare already there")
	}
	if !exists(job + "/3") {
		t.Error("a failed Recycle lost the run's folder in some hierarchy; want it left whole for Clean")
	}
	_ = cg.Clean(job + "/3")
	cg.Prune(job)
	if exists(job) {
		t.Error("Prune left a job's folder that holds only its spare")
	}
}
