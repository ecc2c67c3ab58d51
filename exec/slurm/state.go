package slurm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// State is a job's state as jobfs reads it: Slurm's base states folded
// onto the ones jobfs tells apart.
type State string

// States. OutOfMemory and NodeFail are failures jobfs names in the run's
// error line; Unknown is a Slurm state this package does not know.
const (
	Pending     State = "PENDING"
	Running     State = "RUNNING"
	Completed   State = "COMPLETED"
	Failed      State = "FAILED"
	Timeout     State = "TIMEOUT"
	Cancelled   State = "CANCELLED"
	OutOfMemory State = "OUT_OF_MEMORY"
	NodeFail    State = "NODE_FAIL"
	Unknown     State = "UNKNOWN"
)

// Terminal reports whether a job in state s has ended.
func (s State) Terminal() bool {
	switch s {
	case Completed, Failed, Timeout, Cancelled, OutOfMemory, NodeFail:
		return true
	}
	return false
}

// slurmStates maps Slurm's job states (slurm.h job_states and the flags
// squeue shows as states) onto State.
var slurmStates = map[string]State{
	"PENDING":       Pending,
	"REQUEUED":      Pending,
	"REQUEUE_HOLD":  Pending,
	"REQUEUE_FED":   Pending,
	"RESV_DEL_HOLD": Pending,
	"CONFIGURING":   Pending,
	"RUNNING":       Running,
	"COMPLETING":    Running,
	"SUSPENDED":     Running,
	"STOPPED":       Running,
	"SIGNALING":     Running,
	"STAGE_OUT":     Running,
	"RESIZING":      Running,
	"COMPLETED":     Completed,
	"FAILED":        Failed,
	"BOOT_FAIL":     Failed,
	"SPECIAL_EXIT":  Failed,
	"REVOKED":       Failed,
	"PREEMPTED":     Failed,
	"TIMEOUT":       Timeout,
	"DEADLINE":      Timeout,
	"CANCELLED":     Cancelled,
	"OUT_OF_MEMORY": OutOfMemory,
	"NODE_FAIL":     NodeFail,
}

// mapState folds Slurm's state name ("CANCELLED by 0" from sacct's text
// forms included) onto State.
func mapState(slurm string) State {
	base, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(slurm)), " ")
	if s, ok := slurmStates[base]; ok {
		return s
	}
	return Unknown
}

// stateField reads a state that is a string (22.05: "COMPLETED") or a list
// whose first entry is the base state and the rest flags (23.02+).
type stateField string

func (s *stateField) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stateField(one)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("job state %s: %w", b, err)
	}
	if len(list) > 0 {
		*s = stateField(list[0])
	}
	return nil
}

// number reads an integer that is a plain number or null (22.05) or an
// object {"set":true,"infinite":false,"number":N} (23.02+).
type number struct {
	Val      int64
	Set      bool // a value was given
	Infinite bool
}

func (n *number) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*n = number{}
		return nil
	}
	var v int64
	if err := json.Unmarshal(b, &v); err == nil {
		*n = number{Val: v, Set: true}
		return nil
	}
	var o struct {
		Set      bool  `json:"set"`
		Infinite bool  `json:"infinite"`
		Number   int64 `json:"number"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("number %s: %w", b, err)
	}
	*n = number{Val: o.Number, Set: o.Set || o.Infinite, Infinite: o.Infinite}
	return nil
}

// exitField reads exit_code: 22.05's squeue gives a raw wait status (768 is
// exit 3, 15 is SIGTERM); sacct and 23.02+ give an object with return_code
// and signal.
type exitField struct {
	Code   int
	Signal int
}

func (e *exitField) UnmarshalJSON(b []byte) error {
	var ws number
	if err := ws.UnmarshalJSON(b); err == nil && !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		*e = fromWaitStatus(int(ws.Val))
		return nil
	}
	var o struct {
		ReturnCode number `json:"return_code"`
		Signal     struct {
			SignalID number `json:"signal_id"` // 22.05 sacct
			ID       number `json:"id"`        // 23.02+
		} `json:"signal"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("exit code %s: %w", b, err)
	}
	*e = exitField{Code: int(o.ReturnCode.Val), Signal: int(o.Signal.SignalID.Val + o.Signal.ID.Val)}
	return nil
}

// fromWaitStatus splits a wait status. Slurm puts values in it that are not
// a real status (OUT_OF_MEMORY jobs show 253): a signal outside 1-64 is
// dropped.
func fromWaitStatus(ws int) exitField {
	sig := ws & 0x7f
	if sig == 0 {
		return exitField{Code: (ws >> 8) & 0xff}
	}
	if sig > 64 {
		return exitField{}
	}
	return exitField{Signal: sig}
}
