// Command jobfs mounts a job tree as a FUSE filesystem: mkdir makes a job,
// echo configures it, a write to data runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jobfs/jobfs/crypt"
	"github.com/jobfs/jobfs/exec"
	jobfs "github.com/jobfs/jobfs/fs"
	"github.com/jobfs/jobfs/jobs"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `jobfs mounts a tree of jobs as a filesystem; shell tools are the client.

Usage:
  jobfs mount [flags] MOUNTPOINT   serve the job tree at MOUNTPOINT until SIGINT/SIGTERM
  jobfs STATE MOUNTPOINT [-o OPTS] [-f]
                                   the mount helper form (mount -t fuse.jobfs, fstab):
                                   returns once mounted, the daemon in the background
  jobfs keygen -o FILE             make a key pair for signing jobs; prints the public key
  jobfs sign -k KEY MOUNT/JOB      sign a job's config (written to config/signatures)
  jobfs run [--wait] JOB < PAYLOAD start a run, print its id (--wait: stream its log,
                                   exit with its exit code)
  jobfs ps                         one line per job you may see, with its newest run
  jobfs logs [-f] JOB [ID]         a run's log (-f: follow it until it ends)
  jobfs stop|kill JOB [ID]         stop or kill a run (default: the newest active one)
  jobfs wait JOB [ID]              wait for a run's end, exit with its exit code
  jobfs version                    print the version
  jobfs help                       this text

Run 'jobfs mount --help' for the mount flags, 'jobfs STATE MOUNTPOINT -h' for the
options of the helper form, 'man jobfs' for both. In the mount:
  mkdir MOUNT/hello                              create a job
  echo script > MOUNT/hello/config/type          configure it
  echo '{"n": 1}' > MOUNT/hello/data             start a run
  cat MOUNT/hello/runs/latest/status             PENDING, RUNNING, PAUSED, COMPLETED,
                                                 FAILED, TIMEOUT or CANCELLED
`

func main() {
	exec.MaybeInit() // a step's init: never returns
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		sayf(stderr, "%s", usage)
		return 2
	}
	switch args[0] {
	case "mount":
		return mountCmd(args[1:], stdout, stderr)
	case "keygen":
		return keygenCmd(args[1:], stdout, stderr)
	case "sign":
		return signCmd(args[1:], stdout, stderr)
	case "run", "ps", "logs", "stop", "kill", "wait": // the client: cli.go
		return cliCmd(args[0], args[1:], os.Stdin, stdout, stderr)
	case "version", "--version", "-v":
		sayln(stdout, "jobfs", version)
		return 0
	case "help", "--help", "-h":
		sayf(stdout, "%s", usage)
		return 0
	}
	if isHelperForm(args) {
		return helperCmd(args, stdout, stderr)
	}
	sayf(stderr, "jobfs: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// defaultStateDir is /var/lib/jobfs as root, else $XDG_STATE_HOME/jobfs or
// ~/.local/state/jobfs.
func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/jobfs"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "jobfs")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), fmt.Sprintf("jobfs-%d", os.Getuid()))
	}
	return filepath.Join(home, ".local", "state", "jobfs")
}

type mountFlags struct {
	state, repos string
	maxActive    int
	maxResultMB  int64
	maxLogMB     int64
	grace        time.Duration
	stopRuns     bool
	debug        bool
	requireLim   bool
	requireIso   bool
	slurm        bool   // --slurm: jobs may run their steps on Slurm
	slurmShim    string // --slurm-shim: the jobfs binary on the compute nodes
	allowOther   bool
	trustedKeys  string
	readOnly     bool
	noExec       bool
	metrics      string       // --metrics ADDR: Prometheus over HTTP
	logFormat    string       // --log-format text|json
	maxJobLog    byteSize     // --max-job-log: a job's log rotates past it
	cluster      clusterFlags // --store etcd://... and the flags of a cluster node (cluster.go)
}

// readyLine is the form of the line the daemon logs once the mount answers,
// as --help documents it; logger writes "<date> <time> jobfs: <message>".
const readyLine = "DATE TIME jobfs: ready: MOUNTPOINT mounted (state DIR, repos DIR)"

// readyFormat is the message of that line.
const readyFormat = "ready: %s mounted (state %s, repos %s)"

// newLogger starts every line with its time, then "jobfs: ", so that the
// lines read the same in a terminal, a log file and the journal.
func newLogger(w io.Writer) *log.Logger {
	return log.New(w, "jobfs: ", log.LstdFlags|log.Lmsgprefix)
}

// parseMount parses jobfs mount's arguments. --help prints the whole
// usage to help and returns flag.ErrHelp; a mistake is only an error (a
// line, with where to look), not the usage's seventy lines before it.
func parseMount(args []string, help io.Writer) (mountFlags, string, error) {
	var f mountFlags
	fs := mountFlagSet(&f, help)
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(help)
		usage()
		return f, "", err
	case err != nil:
		return f, "", fmt.Errorf("%w (jobfs mount --help lists the flags)", err)
	case fs.NArg() != 1:
		return f, "", errors.New("need exactly one MOUNTPOINT: jobfs mount [flags] MOUNTPOINT (jobfs mount --help lists the flags)")
	case f.maxActive < 0:
		return f, "", fmt.Errorf("--max-active %d: want a number of runs, or 0 for the default (2 x cores)", f.maxActive)
	}
	return f, fs.Arg(0), nil
}

// mountFlagSet defines the flags of jobfs mount into f. The mount helper
// form maps its -o options onto the same set, so every flag is an option.
func mountFlagSet(f *mountFlags, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("jobfs mount", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&f.state, "state", defaultStateDir(), "state `dir`: jobfs.db and run files")
	fs.StringVar(&f.repos, "repos", "", "repo images `dir`: <dir>/<owner>/<name>/entrypoint (default <state>/repos)")
	fs.IntVar(&f.maxActive, "max-active", 0, "runs executing at once; more wait as PENDING (0: 2 x cores, the default)")
	fs.Int64Var(&f.maxResultMB, "max-result", 100, "result size cap in `MB`; a larger output fails the run")
	fs.Int64Var(&f.maxLogMB, "max-log", 1024, "per-run log cap in `MiB`; past it the log ends with a line saying so and the step keeps running")
	fs.DurationVar(&f.grace, "grace", 10*time.Second, "time between SIGTERM and SIGKILL when a run is stopped or times out")
	fs.BoolVar(&f.stopRuns, "stop-runs-on-exit", false, "stop every active run when jobfs stops (they end FAILED); by default runs go on and the next start re-attaches to them")
	fs.BoolVar(&f.debug, "debug", false, "log every FUSE request to stderr")
	fs.StringVar(&f.trustedKeys, "trusted-keys", "", "`file` of public keys (ed25519:<base64>, one per line): every run needs a valid signature by one of them")
	fs.BoolVar(&f.allowOther, "allow-other", false, "serve every local user (as root): each sees their own jobs at MOUNT/<job> and jobs shared with them at MOUNT/@<owner>/<job>")
	fs.BoolVar(&f.requireLim, "require-limits", false, "fail runs whose cgroup limits cannot be enforced, instead of running them with a warning in their log")
	fs.BoolVar(&f.slurm, "slurm", false, "let jobs run their steps on a Slurm cluster (config/backend slurm): sbatch, squeue and scancel from PATH, SLURM_CONF from the environment; --state (or --data) must be on storage the nodes share")
	fs.StringVar(&f.slurmShim, "slurm-shim", "", "`path` of the jobfs binary on the Slurm nodes, each step's shim there (default: this binary's own path; jobfs-init is expected at the daemon's init path); where either is missing, root's steps run plainly, said in their log, and other users' are refused")
	fs.BoolVar(&f.requireIso, "require-isolation", false, "fail runs whose steps cannot get their namespaces and private root (a normal user whose user namespaces are refused), instead of running them with a warning in their log")
	fs.BoolVar(&f.readOnly, "read-only", false, "mount read-only: jobs and runs can be read, nothing changed through the mount (schedules still run)")
	fs.BoolVar(&f.noExec, "noexec", false, "mount noexec: nothing in the mount can be executed")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics at http://`addr`/metrics (e.g. 127.0.0.1:9464; every owner's: keep it local)")
	fs.StringVar(&f.logFormat, "log-format", "text", "daemon log `format`: text (DATE TIME jobfs: MESSAGE owner=... run=...) or json (one object per line)")
	f.maxJobLog = jobs.DefaultMaxJobLog
	clusterFlagSet(&f.cluster, fs)
	fs.Var(&f.maxJobLog, "max-job-log", "cap of a job's log, a `size` in bytes (K, M, G: 4M): past it, log moves to log.1 (one kept)")
	fs.Usage = func() {
		sayf(out, "Usage: jobfs mount [flags] MOUNTPOINT\n\n"+
			"Serves the job tree at MOUNTPOINT (created if missing) in the foreground until\n"+
			"SIGINT or SIGTERM, or until MOUNTPOINT is unmounted (umount), then exits 0.\n"+
			"A stale mount left by a killed daemon is recovered; a mountpoint in use is\n"+
			"refused. Every log line on stderr reads \"DATE TIME jobfs: MESSAGE\"; once the\n"+
			"mount answers it logs\n\n  %s\n\n"+
			"and, under systemd (Type=notify), sends READY=1; STOPPING=1 when it stops.\n"+
			"Each flag is also an option of the mount helper form, with _ for -:\n"+
			"jobfs STATE MOUNTPOINT -o allow_other,max_active=4 (man jobfs).\n\nFlags:\n", readyLine)
		fs.PrintDefaults()
	}
	return fs
}

func mountCmd(args []string, stdout, stderr io.Writer) int {
	f, mountpoint, err := parseMount(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		sayln(stderr, "jobfs:", err)
		return 2
	}
	logger, slogger, err := newLoggers(stderr, f.logFormat)
	if err != nil {
		sayln(stderr, "jobfs:", err)
		return 2
	}
	rd := newReadiness(logger)
	if err := serve(f, mountpoint, logger, slogger, rd); err != nil {
		logger.Print(err)
		rd.failed(err)
		return 1
	}
	logger.Print("stopped")
	return 0
}

func serve(f mountFlags, mountpoint string, logger *log.Logger, slogger *slog.Logger, rd *readiness) (err error) {
	inheritNothing()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A reader of our stderr that went away (jobfs mount ... | head) must not
	// kill the daemon: with SIGPIPE caught, the write fails with EPIPE instead.
	// Notify, not Ignore: an ignored signal would stay ignored in the steps.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	state, err := filepath.Abs(f.state)
	if err != nil {
		return err
	}
	for _, p := range []*string{&f.repos, &f.trustedKeys, &f.cluster.data} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	mp, recovered, created, err := jobfs.PrepareMountpoint(mountpoint)
	if err != nil {
		return err
	}
	if created {
		defer func() {
			if err != nil {
				_ = os.Remove(mp) // made for a mount that did not happen; still mounted or not empty: kept
			}
		}()
	}
	// Nothing of the daemon may keep the mountpoint busy.
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if recovered {
		logger.Printf("recovered the stale mount at %s", mp)
	}
	f.state = state // absolute: isolation probes there, after the chdir
	iso, err := isolation(f, logger)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(state, 0o711); err != nil {
		return fmt.Errorf("create state folder: %w", err)
	}
	key, err := crypt.LoadOrCreateMasterKey(filepath.Join(state, "master.key"))
	if err != nil {
		return err
	}
	sealer, err := crypt.NewSealer(key)
	if err != nil {
		return err
	}
	trusted, err := loadTrusted(f.trustedKeys, logger)
	if err != nil {
		return err
	}
	defer watchHUP(f.trustedKeys, trusted, logger)()
	cl, err := openCluster(f.cluster, key) // nil without --store
	if err != nil {
		return err
	}
	opts := jobs.Options{
		Init:             iso.Init,
		Shim:             iso.Shim,
		Cgroups:          iso.Cgroups,
		NoLimits:         iso.NoLimits,
		RequireLimits:    f.requireLim,
		Namespaces:       iso.Namespaces,
		UserNS:           iso.UserNS,
		NoIsolation:      iso.NoIsolation,
		RequireIsolation: iso.RequireIsolation,
		Sealer:           sealer,
		TrustedKeys:      trusted,
		StateDir:         state,
		ReposDir:         f.repos,
		MaxActive:        f.maxActive,
		MaxResult:        f.maxResultMB * 1_000_000,
		MaxLog:           f.maxLogMB << 20,
		Grace:            f.grace,
		StopRunsOnExit:   f.stopRuns,
		Logger:           logger,
		Slog:             slogger,
		MaxJobLog:        int64(f.maxJobLog),
	}
	if f.slurm {
		opts.Slurm = &jobs.SlurmOptions{Shim: f.slurmShim}
	}
	if cl != nil { // the run files live in the shared --data folder
		opts.Store, opts.Cluster, opts.NoExecute, opts.StateDir = cl, cl, f.cluster.noExecute, f.cluster.data
		logger.Printf("cluster: node %s of etcd %s (data %s)", cl.Node(), f.cluster.store, f.cluster.data)
	}
	m, err := jobs.New(opts)
	if err != nil {
		if cl != nil {
			_ = cl.Close() // New's error is the one to report; a second Close is a no-op
		}
		return err
	}
	if f.metrics != "" {
		stopMetrics, err := serveMetrics(f.metrics, m, logger)
		if err != nil {
			if cerr := m.Close(); cerr != nil {
				logger.Printf("close the state: %v", cerr)
			}
			return err
		}
		defer stopMetrics()
	}
	root := jobfs.NewRoot(m, uint32(os.Geteuid()), f.allowOther)
	mounted := jobfs.Resolved(mp) // as Mount mounts it, and Unmount looks for it
	server, err := jobfs.Mount(mp, root, jobfs.MountOptions{
		Debug: f.debug, AllowOther: f.allowOther, ReadOnly: f.readOnly, NoExec: f.noExec,
		Count: m.FuseOp,
	})
	if err != nil {
		if cerr := m.Close(); cerr != nil {
			logger.Printf("close the state: %v", cerr)
		}
		return err
	}
	m.Start() // catch-up runs, now that their files can be seen
	logger.Printf(readyFormat, mp, state, m.ReposDir())
	rd.ready()
	served := make(chan struct{})
	go func() { server.Wait(); close(served) }()
	select {
	case <-ctx.Done():
		rd.stopping()
		m.EndRuns() // --stop-runs-on-exit: ended FAILED while their wait readers are served
		logger.Printf("stopping: unmounting %s", mp)
		m.BeginClose() // blocked stream and wait readers of runs going on get ESHUTDOWN
		if err := jobfs.Unmount(server, mounted); err != nil {
			logger.Printf("unmount %s: %v", mp, err)
		}
	case <-served:
		rd.stopping()
		logger.Printf("%s was unmounted from outside; stopping", mp)
	}
	return m.Close()
}

// probeUserNS tries one step in user namespaces from a folder in the state
// folder, where the steps' folders will be (a noexec /tmp must not count).
func probeUserNS(init, state string) error {
	if err := os.MkdirAll(state, 0o711); err != nil {
		return fmt.Errorf("create state folder: %w", err)
	}
	return exec.ProbeUserNS(init, state)
}

// stepInit is the program started as each step's init: jobfs-init beside
// the jobfs binary (small, so it starts in half the time), else jobfs itself.
func stepInit(self string) string { return besideOrSelf(self, "jobfs-init") }

// stepShim is the program started as each step's shim: jobfs-shim beside
// the jobfs binary (it starts in a third of jobfs's time), else jobfs.
func stepShim(self string) string { return besideOrSelf(self, "jobfs-shim") }

// besideOrSelf is the executable name in self's folder, or self.
func besideOrSelf(self, name string) string {
	small := filepath.Join(filepath.Dir(self), name)
	if st, err := os.Stat(small); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return small
	}
	return self
}

// isolation decides how steps are isolated on this host and says so. As
// root: mount, pid, ipc and uts namespaces; as a normal user the same in a
// user namespace, where the kernel allows one (probed with a real step).
// Limits wherever a cgroup subtree is this daemon's to manage.
func isolation(f mountFlags, logger *log.Logger) (jobs.Options, error) {
	var o jobs.Options
	self, err := os.Executable()
	if err != nil {
		return o, fmt.Errorf("find the jobfs binary for the step init: %w", err)
	}
	o.Init, o.Shim = stepInit(self), stepShim(self)
	o.RequireIsolation = f.requireIso
	ns := "mount, pid, ipc and uts namespaces"
	if os.Geteuid() == 0 {
		o.Namespaces = true
	} else if err := probeUserNS(o.Init, f.state); err == nil {
		o.Namespaces, o.UserNS = true, true
		ns = "user, mount, pid, ipc and uts namespaces (as uid " + strconv.Itoa(os.Geteuid()) + ")"
	} else {
		o.NoIsolation = fmt.Sprintf("this user cannot create user namespaces here: %v; steps run as uid %d on the host's root without them (--require-isolation refuses such runs)", err, os.Geteuid())
		ns = "no namespaces"
		logger.Printf("isolation not applied: %s", o.NoIsolation)
	}
	cg, err := exec.DetectCgroups()
	if err != nil {
		o.NoLimits = fmt.Sprintf("%v; --require-limits refuses such runs", err)
		if os.Geteuid() == 0 {
			o.NoLimits = fmt.Sprintf("%v; run jobfs on a host with cgroups, or pass --require-limits to refuse such runs", err)
		}
		logger.Printf("limits not enforced: %s", o.NoLimits)
		logger.Printf("steps run with %s, without limits; init %s, shim %s", ns, o.Init, o.Shim)
		return o, nil
	}
	o.Cgroups = cg
	if gaps := exec.Unenforced(cg, exec.Limits{CPUPercent: 1, MemoryMiB: 1, IOBps: 1, Pids: 1}); gaps != "" {
		logger.Printf("limits not enforced: %s", gaps)
	}
	logger.Printf("steps run in cgroup v%d with limits, %s; init %s, shim %s", cg.Version(), ns, o.Init, o.Shim)
	return o, nil
}
