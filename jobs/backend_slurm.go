package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobfs/jobfs/exec"
	"github.com/jobfs/jobfs/exec/slurm"
	"github.com/jobfs/jobfs/jobs/acl"
)

// SlurmOptions turns on the Slurm backend (jobfs mount --slurm): a job
// whose config/backend is slurm has each step submitted with sbatch.
type SlurmOptions struct {
	// Client runs Slurm's commands; nil: the ones in PATH, with SLURM_CONF
	// and the rest from the daemon's environment.
	Client *slurm.Client
	// Shim is the path of the jobfs binary on the compute nodes, each
	// step's shim there; "" is this daemon's own path.
	Shim string
	// Init is the path of the step init (jobfs-init) on the nodes; "" is
	// the daemon's own (Options.Init). A root daemon's steps start from it
	// there: private root, /input /output /app, the owner's uid.
	Init string
	// Poll is the time between two squeue of all of the daemon's jobs;
	// 0 is defaultSlurmPoll.
	Poll time.Duration
}

// defaultSlurmPoll bounds the daemon's queries to slurmctld: two a second,
// whatever the number of steps.
const defaultSlurmPoll = 500 * time.Millisecond

// slurmBackend submits each step as a Slurm batch job whose script starts
// the step's shim on the compute node (slurmScript). Everything the step
// and the daemon share is in the run folder, on storage the nodes share:
// the spec (owner-only, removed when the job starts), the log, the shim's
// exit.json and the Slurm job id.
type slurmBackend struct {
	c     *slurm.Client
	shim  string
	init  string // "" or not root: steps run as plain processes of their owner's job
	poll  *slurmPoller
	grace time.Duration // retry interval of a scancel while slurmctld is down

	aclOnce sync.Once
	aclErr  error // why the state folder takes no ACLs (set once, by acls); nil: it does
	// grantMu orders grants: each reads a folder's ACL and writes it back
	// with one more entry, so two owners' steps submitted at once would
	// otherwise lose one's entry on jobs/.
	grantMu sync.Mutex
}

func newSlurmBackend(o SlurmOptions, init string) *slurmBackend {
	c := o.Client
	if c == nil {
		c = &slurm.Client{}
	}
	shim := o.Shim
	if shim == "" {
		shim, _ = os.Executable() // "" then: every step runs plainly, said in its log
	}
	poll := o.Poll
	if poll <= 0 {
		poll = defaultSlurmPoll
	}
	if o.Init != "" {
		init = o.Init
	}
	if os.Geteuid() != 0 {
		init = "" // only root starts steps as their owners in namespaces
	}
	return &slurmBackend{c: c, shim: shim, init: init, poll: newSlurmPoller(c, poll), grace: poll}
}

// slurmRun is the Slurm backend for one run: the job's config/slurm
// options travel with it.
type slurmRun struct {
	b     *slurmBackend
	opts  slurm.Options
	owner Owner  // the job's owner, as whom a root daemon submits its steps
	state string // the state folder: jobs/ and images/ are in it
}

// backendFor is the Backend a run's steps run on: its config/backend.
func (m *Manager) backendFor(c runConfig) (Backend, error) {
	if c.values["config/backend"] != "slurm" {
		return m.backend, nil
	}
	if m.slurm == nil {
		return nil, errors.New("config/backend is slurm, but this jobfs was started without --slurm")
	}
	o, err := slurm.ParseOptions(c.values["config/slurm"])
	if err != nil {
		return nil, fmt.Errorf("config/slurm: %w", err)
	}
	return &slurmRun{b: m.slurm, opts: o, owner: c.job.Owner, state: m.state}, nil
}

// checkBackend accepts config/backend: local, or slurm on a daemon started
// with --slurm.
func checkBackend(m *Manager, _ Job, v string) error {
	switch {
	case v == "local":
		return nil
	case v != "slurm":
		return errorf(ErrInvalid, "config/backend: %q: write local (this machine) or slurm", v)
	case m.slurm == nil:
		return errorf(ErrInvalid, "config/backend: slurm: this jobfs was started without --slurm (jobfs mount --slurm)")
	}
	return nil
}

// checkSlurm accepts a config/slurm line that exec/slurm's allow-list takes.
func checkSlurm(_ *Manager, _ Job, v string) error {
	if _, err := slurm.ParseOptions(v); err != nil {
		return errorf(ErrInvalid, "config/slurm: %v", err)
	}
	return nil
}

// Shims: a step's shim on its node writes its log; the daemon follows.
func (r *slurmRun) Shims() bool { return true }

// Gaps says what Slurm does not enforce or isolate.
func (r *slurmRun) Gaps(lim exec.Limits) []string {
	var out []string
	if r.b.init != "" && r.owner != 0 && r.b.acls(r.state) != nil {
		out = append(out, fmt.Sprintf("Slurm sees root, not uid %d: the state folder's file system takes no ACLs (%v), so the owner's batch jobs could not reach their run folders", r.owner, r.b.aclErr))
	}
	if r.b.init == "" {
		out = append(out, "isolation not applied: on Slurm a step runs in its job's cgroup on the node, as its owner, without jobfs's namespaces and private root"+
			map[bool]string{true: " (config/network none not applied)", false: ""}[lim.NoNetwork])
	}
	var not []string
	if lim.Pids > 0 {
		not = append(not, "pids (Slurm has no per-job process limit)")
	}
	if lim.IOBps > 0 {
		not = append(not, "io (Slurm has no I/O limit)")
	}
	if lim.CPUPercent%100 != 0 {
		not = append(not, fmt.Sprintf("cpu %d%% exactly (Slurm gives whole CPUs: --cpus-per-task=%d)", lim.CPUPercent, cpusPerTask(lim)))
	}
	if len(not) > 0 {
		out = append(out, "limits not enforced: "+strings.Join(not, ", "))
	}
	return out
}

// cpusPerTask is config/limits/cpu rounded up to whole CPUs; 0 (no limit)
// leaves Slurm's default.
func cpusPerTask(lim exec.Limits) int {
	return int((lim.CPUPercent + 99) / 100)
}

// CanFreeze: Slurm suspends jobs only for its operators (scontrol suspend).
func (r *slurmRun) CanFreeze() error {
	return errors.New("runs on Slurm cannot be paused: suspending a job is for Slurm's operators")
}

func (r *slurmRun) Freeze(string, uint64, bool) error { return r.CanFreeze() }

// EndRun and EndJob: Slurm frees what it held when its job ended.
func (r *slurmRun) EndRun(string, uint64) error { return nil }
func (r *slurmRun) EndJob(string)               {}

// RunStep submits the step and follows it to its end.
func (r *slurmRun) RunStep(ctx context.Context, s StepSpec) StepResult {
	id, from, err := r.submit(ctx, s)
	if err != nil {
		return StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: err}
	}
	return r.b.follow(ctx, s, id, from)
}

// AttachStep follows a step an earlier daemon submitted, by the Slurm job
// id it recorded.
func (r *slurmRun) AttachStep(ctx context.Context, s StepSpec) StepResult {
	b, err := readSmall(filepath.Join(s.ShimDir, slurmJobFile))
	id := strings.TrimSpace(string(b))
	if err != nil || id == "" {
		return StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: fmt.Errorf("no Slurm job id recorded for the step (%v): it is not submitted again", err)}
	}
	// This daemon's start tightened jobs/ (a chmod resets an ACL's mask): a
	// step still queued must find its way to its run folder when it starts.
	if r.asOwner() {
		if err := r.grant(s); err != nil {
			r.b.note(s, fmt.Sprintf("jobfs: the step's batch job runs as uid %d, which may not reach its run folder: %v", r.owner, err))
		}
	}
	var from int64
	if st, err := os.Lstat(s.LogPath); err == nil {
		from = st.Size()
	}
	return r.b.follow(ctx, s, id, from)
}

// slurmStarted reports whether a step was submitted to Slurm (by this
// daemon or an earlier one): its job id is recorded.
func slurmStarted(shimDir string) bool {
	_, err := os.Lstat(filepath.Join(shimDir, slurmJobFile))
	return err == nil
}

// submit prepares the step's folders and spec and submits its batch job;
// it returns the job id and the log's size before the step.
func (r *slurmRun) submit(ctx context.Context, s StepSpec) (string, int64, error) {
	uid, gid, iso, note, err := r.user(s)
	if err != nil {
		return "", 0, err
	}
	from, err := prepareSlurmStep(s, uid, gid)
	if err != nil {
		return "", 0, err
	}
	if note != "" { // after from: the follower copies it to the run log
		r.b.note(s, note)
	}
	env := s.Env
	if iso != nil {
		env = withHome(env, "/tmp") // the private /tmp
	}
	spec, err := exec.ShimSpecJSON(exec.Spec{Path: s.Program, Args: []string{s.Input, s.Output}, Env: env, Dir: s.Dir, Isolation: iso,
		MaxLog: s.LogOptions.Max, Secrets: s.LogOptions.Secrets, Timeout: s.Timeout, Grace: s.Grace, Shim: &exec.Shim{Dir: s.ShimDir}})
	if err != nil {
		return "", 0, err
	}
	specPath := filepath.Join(s.ShimDir, slurmSpecFile)
	if err := writeOwnerOnly(specPath, spec, uid, gid); err != nil {
		return "", 0, fmt.Errorf("write the step's spec: %w", err)
	}
	job := slurm.Job{
		Options: r.opts, Name: fmt.Sprintf("jobfs-%s-%d-%s", s.Job, s.Run, s.Label),
		Script: slurmScript(s, r.b.shim, r.b.init), MemMiB: s.Limits.MemoryMiB, CPUsPerTask: cpusPerTask(s.Limits),
		Output: filepath.Join(s.ShimDir, slurmOutFile), Workdir: s.ShimDir, UID: uid, GID: gid,
	}
	if s.Timeout > 0 { // Slurm's --time in whole minutes, past the shim's exact timeout and its grace
		job.TimeLimit = s.Timeout + s.Grace
	}
	id, err := r.b.c.Submit(ctx, job)
	if err != nil {
		_ = os.Remove(specPath) // the secrets go with the refused job; its error is the one to report
		return "", 0, fmt.Errorf("submit to Slurm: %w", err)
	}
	if err := writeFileSync(filepath.Join(s.ShimDir, slurmJobFile), []byte(id+"\n"), 0o644); err != nil {
		_ = r.b.c.Cancel(context.Background(), id, 0) // unrecorded, it could not be found again
		return "", 0, fmt.Errorf("record Slurm job %s: %w", id, err)
	}
	return id, from, nil
}

// user is who the step's batch job runs as (uid, gid) and how the shim on
// the node starts the step (iso; nil: as a plain process of the job's
// user), with a line for the step's log when that is not what the job
// asked for.
//
//   - A root daemon with an init submits a job of a user as that user
//     (sbatch --uid, so Slurm's accounting, fair share and associations
//     see the owner): the shim there runs as the owner and starts the init
//     in a user namespace, the rootless path of a normal user's daemon.
//     The owner reaches its own run folder through ACL entries that let
//     it traverse jobs/ and its job's folder (grant).
//   - Root's own jobs, and every job where the state's file system takes
//     no ACLs: root's batch job, whose shim starts the init as root, which
//     starts the step as its owner (Gaps says so in the run log).
//   - Without an init (or not root): a plain process of the job's user.
func (r *slurmRun) user(s StepSpec) (uid, gid uint32, iso *exec.Isolation, note string, err error) {
	b := r.b
	if b.init == "" {
		uid, gid, err = slurmUser(s.Owner)
		return uid, gid, nil, "", err
	}
	iso = &exec.Isolation{
		Init: b.init, Limits: s.Limits, Namespaces: true, NoNetwork: s.Limits.NoNetwork,
		Input: s.Input, Output: s.Output, App: s.Dir,
		UID: uint32(s.Owner), GID: primaryGroup(s.Owner), Groups: groupsOf(s.Owner),
	}
	if !r.asOwner() {
		return 0, 0, iso, "", nil
	}
	if err := r.grant(s); err != nil {
		// images/ on a file system without ACLs, an ACL that is full (ext4
		// holds some 500 entries), ...: the step still runs isolated, as
		// its owner, from root's batch job.
		return 0, 0, iso, fmt.Sprintf("jobfs: Slurm sees root, not uid %d: the owner could not be let through to its run folder: %v", s.Owner, err), nil
	}
	// In a user namespace that maps only the owner, the init cannot set
	// groups: the step keeps those Slurm gave the batch job (the owner's).
	iso.UserNS, iso.Groups = true, nil
	return uint32(s.Owner), iso.GID, iso, "", nil
}

// asOwner reports whether the run's steps are submitted as their owner
// (see user): a root daemon with an init, a job that is not root's, a
// state folder that takes ACLs.
func (r *slurmRun) asOwner() bool {
	return r.b.init != "" && r.owner != 0 && r.b.acls(r.state) == nil
}

// acls probes, once, whether the state's jobs/ folder takes POSIX ACLs,
// and returns why not.
func (b *slurmBackend) acls(state string) error {
	b.aclOnce.Do(func() {
		if _, err := acl.Get(filepath.Join(state, "jobs")); errors.Is(err, acl.ErrNotSupported) {
			b.aclErr = err
		}
	})
	return b.aclErr
}

// grant lets the step's owner traverse (not list) the closed folders on
// the way to its run folder: jobs/ (0700) and its job's folder (0700),
// and images/ (0700) for a chain's image, whose own folder is 0555 like
// the repos it comes from. Traverse only: the owner can list none of
// them, and every other job's folder is 0700 with no entry for it; the
// run folder and what is in it are reached by their own modes (the output,
// log, spec and shim folder are the owner's). It is applied at every
// submit, as a chmod of a folder resets its ACL's mask.
func (r *slurmRun) grant(s StepSpec) error {
	r.b.grantMu.Lock()
	defer r.b.grantMu.Unlock()
	jobs := filepath.Join(r.state, "jobs")
	jobDir := filepath.Join(jobs, s.Job)
	if err := tighten(jobDir, 0o700); err != nil { // made 0755 elsewhere (a cluster node's MkdirAll of a run)
		return err
	}
	paths := []string{jobs, jobDir}
	images := filepath.Join(r.state, "images")
	if strings.HasPrefix(s.Dir, images+string(filepath.Separator)) {
		paths = append(paths, images)
	}
	for _, p := range paths {
		if err := acl.Grant(p, uint32(r.owner), acl.Execute); err != nil {
			return err
		}
	}
	return nil
}

// note appends a line to the step's log on disk, which the daemon follows
// into the run's log.
func (b *slurmBackend) note(s StepSpec, line string) {
	f, err := os.OpenFile(s.LogPath, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return // no log yet: the step's own error says what went wrong
	}
	_, _ = f.WriteString(line + "\n") // a note: the step's outcome does not depend on it
	_ = f.Close()                     // appended without buffering: nothing to flush
}

// slurmUser is the uid and gid the step's Slurm job runs as: the owner's
// (--uid, which needs root), or the daemon's own for root's jobs and for a
// daemon that is not root (then only its own user's jobs run).
func slurmUser(owner Owner) (uint32, uint32, error) {
	euid := os.Geteuid()
	if euid != 0 {
		if owner != Owner(euid) {
			return 0, 0, fmt.Errorf("this jobfs runs as uid %d, not root: it submits Slurm jobs only as that user, and this job belongs to uid %d", euid, owner)
		}
		return 0, 0, nil
	}
	if owner == 0 {
		return 0, 0, nil
	}
	return uint32(owner), primaryGroup(owner), nil
}

// prepareSlurmStep makes the step's shim folder and log the owner's, so
// the shim on the node (running as the owner) can lock, write exit.json
// and append; it returns the log's size.
func prepareSlurmStep(s StepSpec, uid, gid uint32) (int64, error) {
	if err := os.MkdirAll(s.ShimDir, 0o700); err != nil {
		return 0, err
	}
	// The shims' folder is the daemon's (0700): the owner may pass through
	// it to the step's own folder, not list it.
	if err := os.Chmod(filepath.Dir(s.ShimDir), 0o711); err != nil {
		return 0, err
	}
	// The shim's ctl, through which the batch script passes a stop on.
	ctl := filepath.Join(s.ShimDir, "ctl")
	if err := syscall.Mkfifo(ctl, 0o600); err != nil && !errors.Is(err, syscall.EEXIST) {
		return 0, fmt.Errorf("make the step's ctl: %w", err)
	}
	logf, err := os.OpenFile(s.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open log: %w", err)
	}
	var from int64
	if st, err := logf.Stat(); err == nil {
		from = st.Size()
	}
	if uid != 0 {
		// The ctl first, and not following a link: once the folder is the
		// owner's, the owner could swap the ctl for a link to any file.
		err = errors.Join(os.Lchown(ctl, int(uid), int(gid)), logf.Chown(int(uid), int(gid)), os.Chown(s.ShimDir, int(uid), int(gid)))
	}
	if err == nil {
		err = giveToOwner(s.Owner, s.Output)
	}
	if cerr := logf.Close(); err == nil {
		err = cerr
	}
	return from, err
}

// writeOwnerOnly writes a 0600 file that belongs to uid before a byte is
// in it.
func writeOwnerOnly(path string, b []byte, uid, gid uint32) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if uid != 0 {
		err = f.Chown(int(uid), int(gid))
	}
	if err == nil {
		_, err = f.Write(b)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // half written: the error is the one to report
	}
	return err
}

// writeFileSync writes a small file durably: temp file, fsync, rename. The
// temp file is made new (O_EXCL after removing a leftover): in a folder
// its step's owner writes, a file the owner put there is never written to.
func writeFileSync(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	return err
}

// follow waits for a submitted step's end, copying its log's appends to
// the tee meanwhile; ctx stops it (scancel) or detaches from it.
func (b *slurmBackend) follow(ctx context.Context, s StepSpec, id string, from int64) StepResult {
	unfollow := b.poll.follow(id)
	defer unfollow()
	log := newLogFollower(s.LogPath, from, s.LogOptions)
	defer log.close()
	tick := time.NewTicker(100 * time.Millisecond) // the log's appends reach the tee this soon
	defer tick.Stop()
	done, kill := ctx.Done(), exec.KillSwitch(ctx)
	stopped := make(chan struct{}) // closed when follow returns: ends a stop's retries
	defer close(stopped)
	started, stopping := false, false
	for {
		info, ok, missing, err := b.poll.state(id)
		// A pending job's start time is Slurm's estimate: only a job that
		// runs, or ran, started.
		if ok && !started && (info.State == slurm.Running || (info.State.Terminal() && !info.Started.IsZero())) {
			started = true
			if s.Started != nil {
				s.Started(StepStarted{})
			}
		}
		if ok && info.State.Terminal() {
			log.read()
			return b.ended(s, id, info, stopping)
		}
		if err == nil && missing >= 3 { // Slurm forgot it (MinJobAge passed, no accounting)
			log.read()
			return b.forgotten(s, id, stopping)
		}
		select {
		case <-done:
			done = nil
			if errors.Is(context.Cause(ctx), exec.ErrDetach) {
				log.read()
				return StepResult{Outcome: exec.Detached, ExitCode: -1, Err: context.Cause(ctx)}
			}
			stopping = true
			go b.stop(id, errors.Is(context.Cause(ctx), exec.ErrKill), s.Grace, stopped)
		case <-kill:
			kill = nil
			go b.stop(id, true, 0, stopped)
		case <-b.poll.next():
		case <-tick.C:
			log.read()
		}
	}
}

// stop ends a job as a local stop does: SIGTERM to the batch script,
// which has the step's shim stop it (SIGTERM to the step, the grace,
// SIGKILL); kill sends SIGUSR2, which has the shim kill it. A step still
// there a grace later (no shim on its node, a shim that hangs) is
// cancelled by Slurm (scancel: SIGTERM, KillWait, SIGKILL). While
// slurmctld does not answer it retries, until the step ended (done).
func (b *slurmBackend) stop(id string, kill bool, grace time.Duration, done <-chan struct{}) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGUSR2
	}
	if !b.retry(done, func() error { return b.c.Cancel(context.Background(), id, sig) }) {
		return
	}
	select {
	case <-done:
		return
	case <-time.After(grace + slurmStopMargin):
	}
	b.retry(done, func() error { return b.c.Cancel(context.Background(), id, 0) })
}

// slurmStopMargin is what a stopped step's shim gets beyond the grace to
// record its end before Slurm is asked to cancel the job.
const slurmStopMargin = 5 * time.Second

// retry calls fn until it succeeds (true) or done is closed (false).
func (b *slurmBackend) retry(done <-chan struct{}, fn func() error) bool {
	for fn() != nil {
		select {
		case <-done:
			return false
		case <-time.After(b.grace):
		}
	}
	return true
}

// ended maps how Slurm says the job ended, and what the shim recorded,
// onto jobfs's outcome. The shim's record has the step's own exit code;
// Slurm's state says what Slurm did to it (OOM, time limit, scancel).
func (b *slurmBackend) ended(s StepSpec, id string, info slurm.Info, stopping bool) StepResult {
	rec, recErr := exec.ReadShimRecord(s.ShimDir)
	r := fromSlurm(info)
	if rec != nil {
		res := rec.Result()
		r = StepResult{Outcome: res.Outcome, ExitCode: res.ExitCode, Err: res.Err, OOM: res.OOM, Usage: usageOf(res.Usage)}
	}
	orCode := func(c int) int {
		if rec == nil || r.ExitCode <= 0 {
			return c
		}
		return r.ExitCode
	}
	switch {
	case stopping: // jobfs stopped it: the pipeline says why (ctl, timeout, shutdown)
		r.Outcome, r.ExitCode = exec.Cancelled, orCode(128+int(syscall.SIGTERM))
	case info.State == slurm.OutOfMemory:
		r.Outcome, r.ExitCode, r.OOM = exec.Exited, orCode(128+int(syscall.SIGKILL)), true
	case info.State == slurm.Cancelled:
		r.Outcome, r.ExitCode = exec.Cancelled, orCode(128+int(syscall.SIGTERM))
		r.Err = fmt.Errorf("cancelled in Slurm (job %s, scancel outside jobfs)", id)
	case info.State == slurm.Timeout && r.Outcome != exec.TimedOut:
		r.Outcome, r.ExitCode = exec.TimedOut, 124
	case info.State == slurm.NodeFail:
		r = StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: fmt.Errorf("the Slurm job %s: its node failed", id)}
	case rec == nil && info.State == slurm.Failed:
		if line := lastFileLine(filepath.Join(s.ShimDir, slurmOutFile)); line != "" {
			r = StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: fmt.Errorf("the Slurm job %s failed: %s", id, line)}
		}
	case rec == nil && recErr != nil:
		r = StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: fmt.Errorf("the Slurm job %s: the step's exit.json: %w", id, recErr)}
	case rec == nil && !plainRun(s.ShimDir):
		r = StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: fmt.Errorf("the Slurm job %s ended %s, and the step's shim left no exit.json%s", id, info.SlurmState, outLine(s.ShimDir))}
	}
	if r.Outcome == exec.Cancelled && r.Err == nil {
		r.Err = fmt.Errorf("stopped (Slurm job %s)", id)
	}
	return r
}

// plainRun reports whether the batch script ran the step without its shim.
func plainRun(shimDir string) bool {
	_, err := os.Lstat(filepath.Join(shimDir, slurmPlainFile))
	return err == nil
}

// outLine is ": " and the last line the batch script printed, or "".
func outLine(shimDir string) string {
	if l := lastFileLine(filepath.Join(shimDir, slurmOutFile)); l != "" {
		return ": " + l
	}
	return ""
}

// fromSlurm is a job's end as Slurm's record says it: its exit code, or
// 128+N for signal N.
func fromSlurm(info slurm.Info) StepResult {
	code := info.ExitCode
	if info.Signal > 0 {
		code = 128 + info.Signal
	}
	if info.State == slurm.Failed && code == 0 {
		code = 1 // failed before the script ran (BOOT_FAIL, ...)
	}
	return StepResult{Outcome: exec.Exited, ExitCode: code}
}

// forgotten ends a step whose job Slurm no longer lists: by the shim's
// record when it left one.
func (b *slurmBackend) forgotten(s StepSpec, id string, stopping bool) StepResult {
	rec, err := exec.ReadShimRecord(s.ShimDir)
	if rec != nil {
		res := rec.Result()
		if stopping {
			res.Outcome = exec.Cancelled
		}
		return StepResult{Outcome: res.Outcome, ExitCode: res.ExitCode, Err: res.Err, OOM: res.OOM, Usage: usageOf(res.Usage)}
	}
	if err == nil {
		err = errors.New("and its shim left no exit.json")
	}
	return StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: fmt.Errorf("the Slurm cluster no longer knows job %s (ended long ago, no accounting) %v", id, err)}
}

// lastFileLine is the last non-empty line of a small file, at most 512
// bytes of it; "" when there is none.
func lastFileLine(path string) string {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0) // the owner's folder: no link, no FIFO
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read only
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return ""
	}
	if err != nil {
		return ""
	}
	buf := make([]byte, 512)
	n, _ := f.ReadAt(buf, max(st.Size()-512, 0)) // EOF with what it read
	lines := strings.Split(strings.TrimSpace(string(buf[:n])), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// slurmJobs is runs/N/slurm_job: "ID LABEL", one line per step submitted
// to Slurm, by label.
func (m *Manager) slurmJobs(job string, run uint64) string {
	dirs, _ := filepath.Glob(filepath.Join(m.RunDir(job, run), shimFolder, "*", slurmJobFile)) // a bad pattern only
	var b strings.Builder
	for _, p := range dirs {
		id, err := readSmall(p)
		if err != nil {
			continue // removed with its run meanwhile, or not a file the daemon wrote
		}
		b.WriteString(strings.TrimSpace(string(id)) + " " + filepath.Base(filepath.Dir(p)) + "\n")
	}
	return b.String()
}

// SlurmJobs is runs/N/slurm_job ("" for a run no step of which went to
// Slurm), checking that the run exists.
func (m *Manager) SlurmJobs(job string, run uint64) (string, error) {
	if _, err := m.Run(job, run); err != nil {
		return "", err
	}
	return m.slurmJobs(job, run), nil
}

// stepSubmitted reports whether a step was handed to its shim (by this
// daemon or an earlier one): the shim started, or Slurm has its job.
func stepSubmitted(shimDir string) bool {
	return exec.ShimStarted(shimDir) || slurmStarted(shimDir)
}

// slurmSubmitted reports whether a step of the run in runDir was submitted
// to Slurm: a later daemon resumes the run (recover.go), following the step
// whether Slurm still queues it or runs it.
func slurmSubmitted(runDir string) bool {
	found, _ := filepath.Glob(filepath.Join(runDir, shimFolder, "*", slurmJobFile)) // a bad pattern only
	return len(found) > 0
}

// cancelSlurmSteps cancels the Slurm jobs of a run a start fails rather
// than resumes (--stop-runs-on-exit, a crash): nobody would follow them.
// A job that ended already makes scancel fail, which is logged and dropped.
func (m *Manager) cancelSlurmSteps(ref RunRef) {
	lines := strings.Split(strings.TrimSpace(m.slurmJobs(ref.JobID, ref.Run.ID)), "\n")
	c := &slurm.Client{Timeout: 10 * time.Second}
	if m.slurm != nil {
		c = m.slurm.c
	}
	for _, l := range lines {
		id, label, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if err := c.Cancel(context.Background(), id, 0); err != nil {
			m.slog.Info(fmt.Sprintf("scancel Slurm job %s of step %s, left by an earlier jobfs: %v", id, label, err), m.runAttrs(ref.JobID, ref.Run.ID)...)
		}
	}
}

// readSmall reads a small regular file the daemon wrote in a folder a
// step's owner may write (slurm_job): not following a link, not opening a
// FIFO, at most 4 KiB, and only a file of the daemon's own uid. The owner
// may remove the file and make another, which is then its own: a Slurm
// job id it wrote there (another user's job) is never followed, let
// alone cancelled, by the daemon.
func readSmall(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Uid != uint32(os.Geteuid()) {
		return nil, fmt.Errorf("%s is not jobfs's own file: its step's owner made it", path)
	}
	b := make([]byte, 4096)
	n, err := f.Read(b)
	if err != nil && n == 0 {
		return nil, err
	}
	return b[:n], nil
}
