package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// sacctJob is one job of sacct --json (openapi dbv0.0.38 in 22.05; the
// number and state fields also read later versions' forms).
type sacctJob struct {
	JobID number `json:"job_id"`
	Array struct {
		JobID  number `json:"job_id"`
		TaskID number `json:"task_id"`
	} `json:"array"`
	State struct {
		Current stateField `json:"current"`
		Reason  string     `json:"reason"`
	} `json:"state"`
	Exit exitField `json:"exit_code"`
	Time struct {
		Submission number `json:"submission"`
		Start      number `json:"start"`
		End        number `json:"end"`
		Limit      number `json:"limit"` // minutes
	} `json:"time"`
	Partition string `json:"partition"`
	User      string `json:"user"`
}

// errNoAccounting is sacct's message where there is no slurmdbd.
const errNoAccounting = "accounting storage is disabled"

// sacct asks the accounting database about jobs slurmctld forgot. Without
// accounting (sacct exits 1: "Slurm accounting storage is disabled") it
// finds nothing, which is not an error.
func (c *Client) sacct(ctx context.Context, ids []string) ([]Info, error) {
	// An array task is written 8_1 in --jobs too.
	out, err := c.run(ctx, nil, "sacct", "--json", "--jobs="+strings.Join(ids, ","))
	var ce *CmdError
	if errors.As(err, &ce) && strings.Contains(strings.ToLower(ce.Stderr), errNoAccounting) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Errors apiErrors  `json:"errors"`
		Jobs   []sacctJob `json:"jobs"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, &CmdError{Cmd: "sacct", Err: fmt.Errorf("reading its --json output: %w", err)}
	}
	if err := doc.Errors.err("sacct"); err != nil {
		return nil, err
	}
	infos := make([]Info, 0, len(doc.Jobs))
	for _, j := range doc.Jobs {
		infos = append(infos, j.info())
	}
	return infos, nil
}

func (j sacctJob) info() Info {
	i := Info{
		JobID:      strconv.FormatInt(j.JobID.Val, 10),
		State:      mapState(string(j.State.Current)),
		SlurmState: string(j.State.Current),
		Reason:     j.State.Reason,
		ExitCode:   j.Exit.Code,
		Signal:     j.Exit.Signal,
		Submitted:  unix(j.Time.Submission),
		Started:    unix(j.Time.Start),
		Ended:      unix(j.Time.End),
		TimeLimit:  limit(j.Time.Limit),
		Partition:  j.Partition,
		User:       j.User,
	}
	i.ArrayJobID, i.ArrayTaskID = arrayIDs(j.Array.JobID, j.Array.TaskID)
	i.ID = i.JobID
	if i.ArrayTaskID != "" {
		i.ID = i.ArrayJobID + "_" + i.ArrayTaskID
	}
	return i
}
