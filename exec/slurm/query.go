package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Info is what Slurm says about one job (or array task).
type Info struct {
	ID          string // "12", or "8_1" for an array task
	JobID       string // Slurm's own job id
	ArrayJobID  string // the array's id; empty for a plain job
	ArrayTaskID string // the task's index; empty for a plain job or a pending array
	State       State
	SlurmState  string // Slurm's own name, e.g. REQUEUE_HOLD
	Reason      string // Slurm's state reason, e.g. Dependency, OutOfMemory
	ExitCode    int    // the script's exit status
	Signal      int    // the signal that ended it; 0 if none
	Submitted   time.Time
	Started     time.Time // zero until it starts
	Ended       time.Time // zero until it ends
	TimeLimit   time.Duration
	Partition   string
	Gres        string // the job's per-node TRES request, e.g. "gres:gpu:1"
	Dependency  string // e.g. "afterok:5(unfulfilled)"
	// User is the job's user by name, as slurmctld resolved it: whose
	// associations, fair share and accounting the job counts against.
	User string
	// Tasks are an array's tasks, by index, when the array's own id was
	// asked; State is then the array's as a whole.
	Tasks []Info `json:",omitempty"`
}

// Query returns what Slurm knows of the jobs, keyed by the ids asked. It
// reads squeue --json and, for the ids squeue no longer lists, sacct --json.
// An id neither knows is absent from the map: slurmctld forgot it
// (MinJobAge passed) and there is no accounting. An array's own id gives
// the array as a whole with its tasks.
//
// When slurmctld cannot be reached Query returns an error and no map.
func (c *Client) Query(ctx context.Context, ids []string) (map[string]Info, error) {
	for _, id := range ids {
		if !validID(id) {
			return nil, fmt.Errorf("%w: %q is not a job id", ErrBadJob, id)
		}
	}
	jobs, err := c.squeue(ctx)
	if err != nil {
		return nil, err
	}
	found := match(ids, jobs)
	var missing []string
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return found, nil
	}
	old, err := c.sacct(ctx, missing)
	if err != nil {
		return nil, err
	}
	for id, info := range match(missing, old) {
		found[id] = info
	}
	return found, nil
}

// match picks the records of the asked ids.
func match(ids []string, jobs []Info) map[string]Info {
	out := map[string]Info{}
	for _, id := range ids {
		job, task, isTask := strings.Cut(id, "_")
		var hits []Info
		array := false
		for _, j := range jobs {
			switch {
			case isTask && j.ArrayJobID == job && (j.ArrayTaskID == task || j.ArrayTaskID == ""):
				hits = append(hits, j) // the task, or its array still pending whole
			case !isTask && j.ArrayJobID == job:
				hits, array = append(hits, j), true
			case !isTask && j.JobID == job:
				hits = append(hits, j) // a plain job, or a task by its own id
			}
		}
		if len(hits) == 0 {
			continue
		}
		if array {
			out[id] = whole(id, hits)
		} else {
			// A task's own record before its array's pending remainder.
			sort.SliceStable(hits, func(i, j int) bool { return taskIndex(hits[i]) < taskIndex(hits[j]) })
			hits[0].ID = id
			out[id] = hits[0]
		}
	}
	return out
}

// whole makes one Info of an array's tasks: running while a task runs,
// pending while one waits, else the first task that did not complete, else
// completed.
func whole(id string, tasks []Info) Info {
	sort.Slice(tasks, func(i, j int) bool { return taskIndex(tasks[i]) < taskIndex(tasks[j]) })
	w := tasks[0]
	for _, t := range tasks {
		if t.State == Running || (t.State == Pending && w.State != Running) {
			w = t
		}
	}
	if w.State.Terminal() {
		for _, t := range tasks {
			if t.State != Completed {
				w = t
				break
			}
		}
	}
	w.ID, w.JobID, w.ArrayTaskID, w.Tasks = id, id, "", tasks
	return w
}

// taskIndex orders array tasks; a pending whole array sorts last.
func taskIndex(i Info) int {
	n, err := strconv.Atoi(i.ArrayTaskID)
	if err != nil {
		return int(^uint(0) >> 1)
	}
	return n
}

// squeueJob is one job of squeue --json (openapi v0.0.38 in 22.05; the
// number and state fields also read later versions' forms).
type squeueJob struct {
	JobID       number     `json:"job_id"`
	ArrayJobID  number     `json:"array_job_id"`
	ArrayTaskID number     `json:"array_task_id"`
	State       stateField `json:"job_state"`
	Reason      string     `json:"state_reason"`
	Exit        exitField  `json:"exit_code"`
	Submit      number     `json:"submit_time"`
	Start       number     `json:"start_time"`
	End         number     `json:"end_time"`
	TimeLimit   number     `json:"time_limit"` // minutes
	Partition   string     `json:"partition"`
	Gres        string     `json:"tres_per_node"`
	Dependency  string     `json:"dependency"`
	UserName    string     `json:"user_name"`
}

// apiErrors is the "errors" list of Slurm's JSON output.
type apiErrors []struct {
	Description string `json:"description"`
	Error       string `json:"error"`
	Source      string `json:"source"`
}

// err turns the list into one error line, or nil.
func (e apiErrors) err(cmd string) error {
	if len(e) == 0 {
		return nil
	}
	msg := strings.TrimSpace(e[0].Source + ": " + e[0].Description + " (" + e[0].Error + ")")
	return &CmdError{Cmd: cmd, Stderr: msg, Err: ErrUnreachable}
}

// ErrUnreachable means Slurm answered with an error of its own, such as
// slurmctld being down: try again later; the jobs are as they were.
var ErrUnreachable = errors.New("slurm did not answer")

// squeue lists every job slurmctld holds (22.05 ignores filters with
// --json).
func (c *Client) squeue(ctx context.Context) ([]Info, error) {
	out, err := c.run(ctx, nil, "squeue", "--json")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Errors apiErrors   `json:"errors"`
		Jobs   []squeueJob `json:"jobs"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, &CmdError{Cmd: "squeue", Err: fmt.Errorf("reading its --json output: %w", err)}
	}
	if err := doc.Errors.err("squeue"); err != nil {
		return nil, err
	}
	infos := make([]Info, 0, len(doc.Jobs))
	for _, j := range doc.Jobs {
		infos = append(infos, j.info())
	}
	return infos, nil
}

func (j squeueJob) info() Info {
	i := Info{
		JobID:      strconv.FormatInt(j.JobID.Val, 10),
		State:      mapState(string(j.State)),
		SlurmState: string(j.State),
		Reason:     j.Reason,
		ExitCode:   j.Exit.Code,
		Signal:     j.Exit.Signal,
		Submitted:  unix(j.Submit),
		Started:    unix(j.Start),
		Ended:      unix(j.End),
		TimeLimit:  limit(j.TimeLimit),
		Partition:  j.Partition,
		Gres:       j.Gres,
		Dependency: j.Dependency,
		User:       j.UserName,
	}
	i.ArrayJobID, i.ArrayTaskID = arrayIDs(j.ArrayJobID, j.ArrayTaskID)
	i.ID = i.JobID
	if i.ArrayTaskID != "" {
		i.ID = i.ArrayJobID + "_" + i.ArrayTaskID
	}
	if !i.State.Terminal() {
		i.Ended = time.Time{} // squeue gives a pending job's expected end
	}
	return i
}

// arrayIDs gives the array's id and task index as strings; both empty for a
// plain job (array_job_id 0).
func arrayIDs(job, task number) (string, string) {
	if job.Val == 0 {
		return "", ""
	}
	t := ""
	if task.Set && !task.Infinite {
		t = strconv.FormatInt(task.Val, 10)
	}
	return strconv.FormatInt(job.Val, 10), t
}

// unix turns Slurm's epoch seconds into a time; 0 and unset are zero.
func unix(n number) time.Time {
	if !n.Set || n.Val <= 0 {
		return time.Time{}
	}
	return time.Unix(n.Val, 0)
}

// limit turns a time limit in minutes into a duration; unset or infinite
// is 0.
func limit(n number) time.Duration {
	if !n.Set || n.Infinite || n.Val <= 0 {
		return 0
	}
	return time.Duration(n.Val) * time.Minute
}
