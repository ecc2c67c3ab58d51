package slurm

import (
	"encoding/json"
	"testing"
	"time"
)

// squeue2205 holds records as Slurm 22.05.8's squeue --json printed them
// here (trimmed to the fields read).
const squeue2205 = `[
 {"job_id": 1, "array_job_id": 0, "array_task_id": null, "job_state": "FAILED", "state_reason": "NonZeroExitCode",
  "exit_code": 768, "submit_time": 1796179603, "start_time": 1796179604, "end_time": 1796179604, "time_limit": null,
  "partition": "debug", "tres_per_node": "", "dependency": ""},
 {"job_id": 2, "array_job_id": 0, "array_task_id": null, "job_state": "COMPLETED", "state_reason": "None",
  "exit_code": 0, "submit_time": 1796179603, "start_time": 1796179604, "end_time": 1796179604, "time_limit": 2,
  "partition": "debug", "tres_per_node": "gres:gpu:1", "dependency": ""},
 {"job_id": 3, "job_state": "OUT_OF_MEMORY", "state_reason": "OutOfMemory", "exit_code": 253},
 {"job_id": 4, "job_state": "CANCELLED", "exit_code": 15},
 {"job_id": 6, "job_state": "PENDING", "state_reason": "Dependency", "dependency": "afterok:5(unfulfilled)", "end_time": 1796179999},
 {"job_id": 9, "array_job_id": 8, "array_task_id": 0, "job_state": "COMPLETED", "exit_code": 0},
 {"job_id": 10, "array_job_id": 8, "array_task_id": 1, "job_state": "FAILED", "exit_code": 256},
 {"job_id": 8, "array_job_id": 8, "array_task_id": 2, "job_state": "RUNNING", "exit_code": 0},
 {"job_id": 11, "array_job_id": 11, "array_task_id": null, "job_state": "PENDING", "exit_code": 0}
]`

// squeue2311 is one record in the later (v0.0.40) form.
const squeue2311 = `[{"job_id": 7, "array_job_id": {"set": true, "infinite": false, "number": 0},
 "array_task_id": {"set": false, "infinite": false, "number": 0}, "job_state": ["TIMEOUT"],
 "exit_code": {"status": ["SIGNALED"], "return_code": {"set": true, "number": 0}, "signal": {"id": {"set": true, "number": 15}, "name": "TERM"}},
 "time_limit": {"set": true, "infinite": false, "number": 1}, "start_time": {"set": true, "number": 1796179604}}]`

func decodeSqueue(t *testing.T, doc string) []Info {
	t.Helper()
	var jobs []squeueJob
	if err := json.Unmarshal([]byte(doc), &jobs); err != nil {
		t.Fatal(err)
	}
	var infos []Info
	for _, j := range jobs {
		infos = append(infos, j.info())
	}
	return infos
}

func TestDecodeSqueue(t *testing.T) {
	infos := decodeSqueue(t, squeue2205)
	got := match([]string{"1", "2", "3", "4", "6", "8", "8_1", "8_2", "9", "11", "11_0", "404"}, infos)
	want := map[string]struct {
		state      State
		code, sig  int
		task       string
		limit      time.Duration
		gres, reas string
	}{
		"1":    {state: Failed, code: 3, reas: "NonZeroExitCode"},
		"2":    {state: Completed, limit: 2 * time.Minute, gres: "gres:gpu:1", reas: "None"},
		"3":    {state: OutOfMemory, reas: "OutOfMemory"},
		"4":    {state: Cancelled, sig: 15},
		"6":    {state: Pending, reas: "Dependency"},
		"8":    {state: Running},
		"8_1":  {state: Failed, code: 1, task: "1"},
		"8_2":  {state: Running, task: "2"},
		"9":    {state: Completed, task: "0"},
		"11":   {state: Pending},
		"11_0": {state: Pending},
	}
	if len(got) != len(want) {
		t.Errorf("matched %d ids, want %d (404 absent): %v", len(got), len(want), got)
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("%s: not found", id)
			continue
		}
		if g.ID != id || g.State != w.state || g.ExitCode != w.code || g.Signal != w.sig || g.ArrayTaskID != w.task ||
			g.TimeLimit != w.limit || g.Gres != w.gres || g.Reason != w.reas {
			t.Errorf("%s: got %+v; want %+v", id, g, w)
		}
	}
	if n := len(got["8"].Tasks); n != 3 {
		t.Errorf("array 8 has %d tasks, want 3", n)
	}
	if !got["6"].Ended.IsZero() {
		t.Errorf("a pending job has an end time: %v", got["6"].Ended)
	}
	if got["1"].Started.Unix() != 1796179604 {
		t.Errorf("start time %v", got["1"].Started)
	}
}

func TestDecodeSqueueLater(t *testing.T) {
	i := decodeSqueue(t, squeue2311)[0]
	if i.ID != "7" || i.ArrayJobID != "" || i.State != Timeout || i.Signal != 15 || i.TimeLimit != time.Minute || i.Started.Unix() != 1796179604 {
		t.Errorf("got %+v", i)
	}
}

// sacct2205 is the dbv0.0.38 form of sacct --json (22.05), and a later one.
const sacct2205 = `[
 {"job_id": 20, "array": {"job_id": 0, "task_id": null}, "state": {"current": "CANCELLED by 0", "reason": "None"},
  "exit_code": {"status": "SIGNALED", "return_code": 0, "signal": {"signal_id": 9, "name": "KILL"}},
  "time": {"submission": 1796179603, "start": 1796179604, "end": 1796179610, "limit": 5}, "partition": "gpu"},
 {"job_id": 22, "array": {"job_id": 21, "task_id": 1}, "state": {"current": ["NODE_FAIL"], "reason": "None"},
  "exit_code": {"status": ["ERROR"], "return_code": {"set": true, "number": 2}, "signal": {"id": {"set": false, "number": 0}}},
  "time": {"limit": {"set": true, "infinite": true, "number": 0}}}
]`

func TestDecodeSacct(t *testing.T) {
	var jobs []sacctJob
	if err := json.Unmarshal([]byte(sacct2205), &jobs); err != nil {
		t.Fatal(err)
	}
	a, b := jobs[0].info(), jobs[1].info()
	if a.ID != "20" || a.State != Cancelled || a.Signal != 9 || a.TimeLimit != 5*time.Minute || a.Partition != "gpu" || a.Ended.Unix() != 1796179610 {
		t.Errorf("job 20: %+v", a)
	}
	if b.ID != "21_1" || b.State != NodeFail || b.ExitCode != 2 || b.TimeLimit != 0 {
		t.Errorf("job 22: %+v", b)
	}
}

func TestMapState(t *testing.T) {
	for in, want := range map[string]State{"PENDING": Pending, "REQUEUE_HOLD": Pending, "COMPLETING": Running,
		"DEADLINE": Timeout, "CANCELLED by 1000": Cancelled, "BOOT_FAIL": Failed, "WEIRD": Unknown} {
		if got := mapState(in); got != want {
			t.Errorf("mapState(%q) = %s; want %s", in, got, want)
		}
	}
}
