package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Job is one batch job to submit.
type Job struct {
	Options        // passed through from config/slurm
	Name    string // --job-name
	// Script is the batch script, sent on sbatch's stdin; it must start with
	// "#!".
	Script []byte
	// MemMiB is --mem in MiB; 0 leaves Slurm's default (DefMemPerCPU).
	MemMiB int64
	// CPUsPerTask is --cpus-per-task; 0 leaves Slurm's default.
	CPUsPerTask int
	// TimeLimit is --time, rounded up to whole minutes (Slurm's unit); 0
	// leaves the partition's limit. Slurm enforces it late (12-17 s here):
	// an exact timeout must be kept next to the step.
	TimeLimit time.Duration
	// Output is the path of stdout and stderr (sbatch patterns such as %j
	// allowed); it must be on storage the nodes share. Empty: slurm-%j.out
	// in Workdir.
	Output  string
	Workdir string // --chdir; empty: the submitter's working folder
	// AfterOK makes the job wait for these jobs to complete with exit 0;
	// it is cancelled if one of them fails (--kill-on-invalid-dep=yes).
	AfterOK []string
	// Array is a job array spec (--array), e.g. "0-9" or "0-99%10".
	Array string
	// Hold submits the job held (--hold); it starts after scontrol release.
	Hold bool
	// UID and GID run the job as that user and group (--uid, --gid: root
	// only); 0 leaves the submitter's.
	UID, GID uint32
}

// ErrBadJob is wrapped by Submit's errors for a Job it refuses before
// running sbatch.
var ErrBadJob = errors.New("bad slurm job")

// Submit submits the job with sbatch --parsable and returns its id. Jobs are
// never requeued (--no-requeue): a node failure ends the job as NODE_FAIL
// rather than running it a second time. The job's environment is PATH and
// Slurm's own variables (--export=PATH), never the rest of the submitter's:
// a root daemon's environment is not for the users whose jobs it submits.
func (c *Client) Submit(ctx context.Context, j Job) (string, error) {
	args, err := j.args()
	if err != nil {
		return "", err
	}
	out, err := c.run(ctx, bytes.NewReader(j.Script), "sbatch", args...)
	if err != nil {
		return "", err
	}
	// --parsable prints "id" or "id;cluster".
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
	if !validID(id) {
		return "", &CmdError{Cmd: "sbatch", Stderr: lastLine(string(out)), Err: errors.New("no job id in its output")}
	}
	return id, nil
}

// args checks the job and builds sbatch's arguments.
func (j Job) args() ([]string, error) {
	if err := j.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJob, err)
	}
	args := []string{"--parsable", "--no-requeue", "--export=PATH"}
	args = append(args, j.Options.args()...)
	add := func(flag, v string) {
		if v != "" {
			args = append(args, flag+"="+v)
		}
	}
	add("--job-name", j.Name)
	if j.MemMiB > 0 {
		add("--mem", strconv.FormatInt(j.MemMiB, 10))
	}
	if j.CPUsPerTask > 0 {
		add("--cpus-per-task", strconv.Itoa(j.CPUsPerTask))
	}
	if j.TimeLimit > 0 {
		add("--time", strconv.FormatInt(Minutes(j.TimeLimit), 10))
	}
	add("--output", j.Output)
	add("--chdir", j.Workdir)
	if len(j.AfterOK) > 0 {
		add("--dependency", "afterok:"+strings.Join(j.AfterOK, ":"))
		args = append(args, "--kill-on-invalid-dep=yes")
	}
	add("--array", j.Array)
	if j.Hold {
		args = append(args, "--hold")
	}
	if j.UID != 0 {
		add("--uid", strconv.FormatUint(uint64(j.UID), 10))
		add("--gid", strconv.FormatUint(uint64(j.GID), 10))
	}
	return args, nil
}

// Minutes rounds d up to whole minutes, the unit of --time.
func Minutes(d time.Duration) int64 {
	return int64((d + time.Minute - 1) / time.Minute)
}

// check refuses what sbatch would misread or what is not a job.
func (j Job) check() error {
	if !bytes.HasPrefix(j.Script, []byte("#!")) {
		return errors.New(`script does not start with "#!"`)
	}
	if j.MemMiB < 0 || j.CPUsPerTask < 0 || j.TimeLimit < 0 {
		return errors.New("negative memory, CPU count or time limit")
	}
	for name, v := range map[string]string{"name": j.Name, "output": j.Output, "workdir": j.Workdir} {
		if strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return fmt.Errorf("%s %q holds a control character", name, v)
		}
	}
	for _, id := range j.AfterOK {
		if !validID(id) {
			return fmt.Errorf("dependency %q is not a job id", id)
		}
	}
	if strings.Trim(j.Array, "0123456789,-:%") != "" {
		return fmt.Errorf("array spec %q: digits and , - : %% only", j.Array)
	}
	return j.optionsCheck()
}

// optionsCheck re-checks options set in code rather than by ParseOptions.
func (j Job) optionsCheck() error {
	_, err := ParseOptions(j.Options.String())
	return err
}

// validID accepts a job id ("12") or an array task id ("12_3").
func validID(id string) bool {
	job, task, isTask := strings.Cut(id, "_")
	if !digits(job) {
		return false
	}
	return !isTask || digits(task)
}

func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
