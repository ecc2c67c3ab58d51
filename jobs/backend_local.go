package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jobfs/jobfs/exec"
)

// localBackend runs each step as a process on this machine: through the
// step init (jobfs-init) in a cgroup of its own with the job's limits and,
// where it can, in its own namespaces on a private root, as the job's owner.
// Without an init (tests of this package, embedding) a step is a plain
// process.
type localBackend struct {
	init             string       // the jobfs binary; "" runs plain processes
	cgroups          exec.Cgroups // nil: no limits here, noLimits says why
	noLimits         string
	requireLimits    bool
	namespaces       bool
	userNS           bool
	noIsolation      string // why there are no namespaces
	requireIsolation bool
	device           string // "major:minor" of the state folder's disk, where steps write
	deviceErr        error  // why io cannot be limited
	parent           string // cgroup folder of this daemon's steps: jobfs/<instance>
	// shim is the jobfs binary each step's shim runs (exec.Shim); "" runs
	// steps inside the daemon, ending with it.
	shim   string
	pool   *exec.ShimPool // idle shims of shim, started ahead; nil without shims
	runDir func(job string, run uint64) string
}

// warmShims is how many idle shims a daemon keeps started ahead: two, so
// that two triggers at once (or a run and the next) do not wait for a
// program's start.
const warmShims = 2

// shimTailFor bounds the wait of a run's end for its shims, which remove
// their step's cgroups after telling the step's end (their init's exit, at
// most 2 s, then the removal's own waits).
const shimTailFor = 10 * time.Second

// localBackend is the Backend of the Manager's options.
func (m *Manager) localBackend() *localBackend {
	o := m.opts
	b := &localBackend{
		init: o.Init, cgroups: o.Cgroups, noLimits: o.NoLimits, requireLimits: o.RequireLimits,
		namespaces: o.Namespaces, userNS: o.UserNS, noIsolation: o.NoIsolation, requireIsolation: o.RequireIsolation,
		device: m.device, deviceErr: m.deviceErr, parent: m.cgroupParent(),
		shim: shimBinary(o), runDir: m.RunDir,
	}
	if b.shim != "" {
		b.pool = exec.NewShimPool(b.shim, warmShims)
		if b.init != "" {
			// The idle shims start the init of a step isolated as most are
			// (config/network none is not: its steps start their own).
			b.pool.StartInitsAhead(exec.InitAhead{Init: b.init, Namespaces: b.namespaces, UserNS: b.namespaces && b.userNS})
		}
	}
	return b
}

// shimBinary is the program that runs as each step's shim: Options.Shim
// (the small jobfs-shim) or the daemon's own binary, when steps run
// through an init; "" keeps them inside the daemon, ending with it
// (StopRunsOnExit, or no init: tests of this package, embedding).
func shimBinary(o Options) string {
	if o.Init == "" || o.StopRunsOnExit {
		return ""
	}
	if o.Shim != "" {
		return o.Shim
	}
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	return self
}

// Shims: steps run under shims when the daemon has a binary for them.
func (b *localBackend) Shims() bool { return b.shim != "" }

// AttachStep follows a step's shim to its end. The tee copies the step's
// lines to the run log only for a shim of protocol 1: a later one writes
// them itself (shimRunLog).
func (b *localBackend) AttachStep(ctx context.Context, s StepSpec) StepResult {
	a := exec.AttachSpec{Dir: s.ShimDir, LogPath: s.LogPath, Tee: s.LogOptions.Tee, Notify: s.LogOptions.Notify}
	if s.LogOptions.Tee != nil {
		a.RunLog, _ = b.shimRunLog(s)
	}
	res := exec.Attach(ctx, a)
	return StepResult{Outcome: res.Outcome, ExitCode: res.ExitCode, Err: res.Err, OOM: res.OOM, Usage: usageOf(res.Usage)}
}

// Gaps: first the namespaces, then the limits. A plain process (no init)
// is what was asked for: no gap is told.
func (b *localBackend) Gaps(lim exec.Limits) []string {
	if b.init == "" {
		return nil
	}
	lim.Device = b.device
	var out []string
	if gaps := b.isolationGaps(lim); gaps != "" {
		out = append(out, "isolation not applied: "+gaps)
	}
	if gaps := b.limitGaps(lim); gaps != "" {
		out = append(out, "limits not enforced: "+gaps)
	}
	return out
}

// isolationGaps says which namespaces a step with limits lim would lack,
// and why; "" when it gets all of them.
func (b *localBackend) isolationGaps(lim exec.Limits) string {
	if b.namespaces {
		return ""
	}
	what := "user, mount, pid, ipc and uts namespaces, private root (the host's files read-only, private /tmp, /input read-only)"
	if lim.NoNetwork {
		what += ", network none"
	}
	return what + ": " + b.noIsolation
}

// limitGaps says which limits a step with limits lim would run without,
// and why; "" when every one is enforced.
func (b *localBackend) limitGaps(lim exec.Limits) string {
	if b.cgroups == nil {
		return b.noLimits
	}
	return exec.Unenforced(b.cgroups, lim)
}

// HoldsToTick: exec starts a step set up ahead at its NotBefore.
func (b *localBackend) HoldsToTick() {}

// RunStep runs the step's process to its end (exec.Run).
func (b *localBackend) RunStep(ctx context.Context, s StepSpec) StepResult {
	lim := s.Limits
	lim.Device = b.device
	iso, err := b.isolation(s, lim)
	if err == nil {
		err = giveToOwner(s.Owner, s.Output)
	}
	if err != nil {
		return StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: err}
	}
	env := s.Env
	if iso != nil && iso.Namespaces {
		env = withHome(env, "/tmp") // the private /tmp
	}
	spec := exec.Spec{
		Path: s.Program, Args: []string{s.Input, s.Output}, Env: env, Dir: s.Dir,
		Log: s.Log, Grace: s.Grace, Isolation: iso, NotBefore: s.NotBefore,
		Started: func(pgid int, start uint64, at time.Time) {
			if s.Started != nil {
				s.Started(StepStarted{Pgid: pgid, PgidStart: start, At: at})
			}
		},
	}
	if b.shim != "" && s.ShimDir != "" {
		spec.Log, spec.Shim = nil, &exec.Shim{Binary: b.shim, Dir: s.ShimDir, Pool: b.pool}
		spec.LogPath, spec.MaxLog, spec.Secrets = s.LogPath, s.LogOptions.Max, s.LogOptions.Secrets
		spec.Tee, spec.Notify, spec.Timeout = s.LogOptions.Tee, s.LogOptions.Notify, s.Timeout
		if s.LogOptions.Tee != nil { // a multi-step run: its shim writes the combined log
			spec.Shim.RunLog, spec.Shim.RunLogPrefix = b.shimRunLog(s)
		}
	}
	res := exec.Run(ctx, spec)
	out := StepResult{Outcome: res.Outcome, ExitCode: res.ExitCode, Err: res.Err, OOM: res.OOM, Usage: usageOf(res.Usage)}
	if st := res.Start; st != nil {
		out.Start = &StepStarted{Pgid: st.Pgid, PgidStart: st.PgidStart, At: st.At}
	}
	return out
}

// shimRunLog is the combined log of a multi-step run and the prefix of
// its step's lines there (as sharedLog's), which the step's shim appends
// to itself: every line is there once, whether a daemon ran or not.
func (b *localBackend) shimRunLog(s StepSpec) (path, prefix string) {
	return filepath.Join(b.runDir(s.Job, s.Run), "log"), "[" + s.Label + "] "
}

// withHome returns env with HOME set to home (a new slice).
func withHome(env []string, home string) []string {
	out := make([]string, 0, len(env)+1)
	set := false
	for _, kv := range env {
		if strings.HasPrefix(kv, "HOME=") {
			kv, set = "HOME="+home, true
		}
		out = append(out, kv)
	}
	if !set {
		out = append(out, "HOME="+home)
	}
	return out
}

// isolation says how one step runs: nil for a plain process (no init
// configured), else its cgroup, limits, namespaces and user. An error means
// a requested limit cannot be applied: the step fails with that reason.
func (b *localBackend) isolation(s StepSpec, lim exec.Limits) (*exec.Isolation, error) {
	if b.init == "" {
		return nil, nil
	}
	iso := &exec.Isolation{
		Init:       b.init,
		Cgroups:    b.cgroups,
		Group:      path.Join(b.parent, s.Job, strconv.FormatUint(s.Run, 10), s.Label),
		Limits:     lim,
		Namespaces: b.namespaces,
		UserNS:     b.namespaces && b.userNS,
		NoNetwork:  b.namespaces && lim.NoNetwork,
		Input:      s.Input, Output: s.Output, App: s.Dir,
		UID: s.Owner, GID: primaryGroup(s.Owner), Groups: groupsOf(s.Owner),
	}
	if euid := os.Geteuid(); euid != 0 && s.Owner != Owner(euid) {
		return nil, fmt.Errorf("this jobfs runs as uid %d, not root: it runs steps only as that user, and this job belongs to uid %d (start jobfs as root to run other users' jobs)", euid, s.Owner)
	}
	if iso.Limits.IOBps > 0 && b.deviceErr != nil {
		return nil, fmt.Errorf("config/limits/io cannot be applied: %v", b.deviceErr)
	}
	if gaps := b.limitGaps(lim); gaps != "" && b.requireLimits {
		return nil, fmt.Errorf("limits not enforced and --require-limits is set: %s", gaps)
	}
	if gaps := b.isolationGaps(lim); gaps != "" && b.requireIsolation {
		return nil, fmt.Errorf("isolation not applied and --require-isolation is set: %s", gaps)
	}
	if b.cgroups != nil {
		b.cgroups.Reuse(path.Dir(iso.Group)) // the run's folder, if an earlier run's is spare
	}
	return iso, nil
}

// giveToOwner makes a folder a step writes to belong to the job's owner, so
// a step that runs as that user can write it and its files keep the uid.
func giveToOwner(owner Owner, dir string) error {
	if owner == 0 || os.Geteuid() != 0 {
		return nil
	}
	return os.Chown(dir, int(owner), int(primaryGroup(owner)))
}

// CanFreeze needs the cgroup freezer; its error says why there is none.
func (b *localBackend) CanFreeze() error {
	_, err := b.freezer()
	return err
}

func (b *localBackend) freezer() (exec.Freezer, error) {
	fr, err := exec.FreezerOf(b.cgroups)
	if err != nil {
		reason := err.Error()
		if b.noLimits != "" {
			reason += " (" + b.noLimits + ")"
		}
		return nil, errors.New(reason)
	}
	return fr, nil
}

// Freeze freezes or thaws each step cgroup of the run.
func (b *localBackend) Freeze(job string, run uint64, frozen bool) error {
	fr, err := b.freezer()
	if err != nil {
		return err
	}
	if err := fr.FreezeSteps(b.runCgroup(job, run), frozen); err != nil {
		return err
	}
	b.tellShims(job, run, map[bool]string{true: "pause", false: "resume"}[frozen])
	if b.shim != "" {
		// Its run may outlive this daemon: the next one needs the time
		// it spent paused to give its clock what is left.
		if err := recordPause(b.runDir(job, run), frozen, time.Now()); err != nil {
			return fmt.Errorf("record the pause for a later jobfs: %w", err)
		}
	}
	return nil
}

// tellShims sends cmd to the shims of a run's steps that still run: pause
// and resume stop and start their timeout clocks with the run's.
func (b *localBackend) tellShims(job string, run uint64, cmd string) {
	if b.shim == "" {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(b.runDir(job, run), shimFolder, "*")) // a bad pattern only
	for _, d := range dirs {
		exec.SendShim(d, cmd)
	}
}

// EndRun recycles the run's cgroup folder (each step removed its own) as
// the job's spare for its next run (exec.Cgroups.Recycle), or removes it.
// The shim pool's refill held for the run's step starts here, the run's
// end being recorded and its waiters answered (exec.ShimPool.Refill).
func (b *localBackend) EndRun(job string, run uint64) error {
	if b.pool != nil {
		defer b.pool.Refill()
	}
	if b.cgroups == nil {
		return nil
	}
	// A shim tells the step's end before it removes the step's cgroup.
	dirs, _ := filepath.Glob(filepath.Join(b.runDir(job, run), shimFolder, "*")) // a bad pattern only
	for _, d := range dirs {
		if !exec.AwaitShimEnd(d, shimTailFor) {
			return fmt.Errorf("the shim in %s has not ended %s after its step", d, shimTailFor)
		}
	}
	if b.cgroups.Recycle(b.runCgroup(job, run)) == nil {
		return nil // the job's next run starts in it
	}
	return b.cgroups.Clean(b.runCgroup(job, run))
}

// EndJob removes the job's cgroup folder if it is empty.
func (b *localBackend) EndJob(job string) {
	if b.cgroups != nil {
		b.cgroups.Prune(path.Join(b.parent, job))
	}
}

// runCgroup is the folder of a run's step cgroups.
func (b *localBackend) runCgroup(job string, run uint64) string {
	return path.Join(b.parent, job, strconv.FormatUint(run, 10))
}

// closePool ends the idle shims of the Manager's local backend, if any.
func (m *Manager) closePool() {
	if b, ok := m.backend.(*localBackend); ok && b.pool != nil {
		b.pool.Close()
	}
}
