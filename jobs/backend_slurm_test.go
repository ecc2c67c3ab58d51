package jobs

import (
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jobfs/jobfs/exec"
	"github.com/jobfs/jobfs/exec/slurm"
	"github.com/jobfs/jobfs/jobs/acl"
)

// TestSlurmScript checks the batch script: sh parses it, names are quoted,
// and no secret is in it (it is Slurm's to keep).
func TestSlurmScript(t *testing.T) {
	dir := t.TempDir()
	s := StepSpec{Job: "j'1", Run: 3, Label: "a b", ShimDir: filepath.Join(dir, "it's"), LogPath: filepath.Join(dir, "log $x"),
		Program: "/bin/echo", Dir: dir, Input: "/in", Output: "/out", Env: []string{"PATH=/bin", "JOBFS_JOB=j'1"}}
	for _, secrets := range [][][]byte{nil, {[]byte("s3cr3t-value")}} {
		s.Secrets = secrets
		if secrets != nil {
			s.Env = append(s.Env, "token=s3cr3t-value")
		}
		script := slurmScript(s, "/opt/jobfs bin/jobfs", "/opt/jobfs bin/jobfs-init")
		if strings.Contains(string(script), "s3cr3t-value") {
			t.Errorf("the script holds a secret:\n%s", script)
		}
		path := filepath.Join(dir, "script")
		if err := os.WriteFile(path, script, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := osexec.Command("sh", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v: %s\n%s", err, out, script)
		}
	}
}

// TestSlurmPlainRun runs the script where the shim is missing: the step
// runs plainly, with the log's first line saying so; with secrets it does
// not run.
func TestSlurmPlainRun(t *testing.T) {
	dir := t.TempDir()
	shimDir := filepath.Join(dir, ".shim", "s")
	if err := os.MkdirAll(shimDir, 0o700); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "log")
	s := StepSpec{ShimDir: shimDir, LogPath: log, Program: "/bin/sh", Dir: dir, Input: "-c", Output: `echo "hi $JOBFS_JOB"`,
		Env: []string{"PATH=/bin:/usr/bin", "JOBFS_JOB=it's"}, Job: "j", Label: "s"}
	run := func() (string, error) {
		_ = os.Remove(log) // a fresh log for each case
		err := osexec.Command("sh", "-c", string(slurmScript(s, filepath.Join(dir, "no-jobfs"), ""))).Run()
		b, _ := os.ReadFile(log)
		return string(b), err
	}
	got, err := run()
	if err != nil || !strings.HasPrefix(got, "jobfs: "+filepath.Join(dir, "no-jobfs")+" is not installed on ") || !strings.HasSuffix(got, "\nhi it's\n") {
		t.Errorf("plain run: %v, log %q", err, got)
	}
	s.Secrets = [][]byte{[]byte("value")}
	got, err = run()
	if err == nil || strings.Contains(got, "hi it's") || !strings.Contains(got, "the step is not run") {
		t.Errorf("plain run with secrets: %v, log %q", err, got)
	}
}

// TestSlurmEnded maps Slurm's end states and the shim's record.
func TestSlurmEnded(t *testing.T) {
	b := &slurmBackend{}
	s := StepSpec{ShimDir: t.TempDir()}
	// Without the shim's record nor the plain run's mark, the end is unknown.
	if got := b.ended(s, "5", slurm.Info{State: slurm.Completed, SlurmState: "COMPLETED"}, false); got.Outcome != exec.NotStarted || !strings.Contains(fmt.Sprint(got.Err), "left no exit.json") {
		t.Errorf("no record: got %+v", got)
	}
	if err := os.WriteFile(filepath.Join(s.ShimDir, slurmPlainFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		info     slurm.Info
		stopping bool
		want     exec.Outcome
		code     int
		oom      bool
	}{
		{slurm.Info{State: slurm.Completed}, false, exec.Exited, 0, false},
		{slurm.Info{State: slurm.Failed, ExitCode: 7}, false, exec.Exited, 7, false},
		{slurm.Info{State: slurm.Failed, Signal: 9}, false, exec.Exited, 137, false},
		{slurm.Info{State: slurm.OutOfMemory}, false, exec.Exited, 137, true},
		{slurm.Info{State: slurm.Timeout}, false, exec.TimedOut, 124, false},
		{slurm.Info{State: slurm.Cancelled}, false, exec.Cancelled, 143, false},
		{slurm.Info{State: slurm.Cancelled}, true, exec.Cancelled, 143, false},
		{slurm.Info{State: slurm.NodeFail}, false, exec.NotStarted, -1, false},
	}
	for _, c := range cases {
		got := b.ended(s, "5", c.info, c.stopping)
		if got.Outcome != c.want || got.ExitCode != c.code || got.OOM != c.oom {
			t.Errorf("%+v (stopping %v): got %+v, want outcome %v code %d oom %v", c.info, c.stopping, got, c.want, c.code, c.oom)
		}
		if c.info.State == slurm.Cancelled && !c.stopping && (got.Err == nil || !strings.Contains(got.Err.Error(), "scancel outside jobfs")) {
			t.Errorf("an outside scancel: err %v", got.Err)
		}
	}
}

// TestSlurmGaps says what Slurm does not enforce.
func TestSlurmGaps(t *testing.T) {
	r := &slurmRun{b: &slurmBackend{}}
	got := strings.Join(r.Gaps(exec.Limits{CPUPercent: 150, MemoryMiB: 100, Pids: 10, IOBps: 5}), "\n")
	for _, want := range []string{"isolation not applied: on Slurm", "pids", "io", "--cpus-per-task=2"} {
		if !strings.Contains(got, want) {
			t.Errorf("gaps %q lack %q", got, want)
		}
	}
	if got := r.Gaps(exec.Limits{CPUPercent: 200}); len(got) != 1 {
		t.Errorf("gaps with whole CPUs and no pids or io limit: %q, want the isolation line only", got)
	}
}

// TestSlurmStateModes: a job's folder is 0700 when made and when an older
// jobfs left it 0755; a restart keeps an owner's traverse-only ACL entry
// (its mask) rather than resetting it with a chmod.
func TestSlurmStateModes(t *testing.T) {
	state := t.TempDir()
	jobsDir := filepath.Join(state, "jobs")
	old, granted := filepath.Join(jobsDir, "old"), filepath.Join(jobsDir, "granted")
	for _, d := range []string{old, granted} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(granted, 0o700); err != nil {
		t.Fatal(err)
	}
	const uid = 54321
	err := acl.Grant(granted, uid, acl.Execute)
	if errors.Is(err, acl.ErrNotSupported) {
		t.Skipf("the temporary folder takes no ACLs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, Options{StateDir: state})
	modes := map[string]os.FileMode{jobsDir: 0o700, old: 0o700, granted: 0o710}
	for d, want := range modes {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", d, st.Mode().Perm(), err, want)
		}
	}
	if a, err := acl.Get(granted); err != nil || !aclGrants(a, uid) {
		t.Errorf("after a start, the ACL of %s = %v (%v): uid %d's entry lost", granted, a, err, uid)
	}
	j := mustCreateJob(t, m, "modes")
	if st, err := os.Stat(m.jobDir(j.ID)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("a new job's folder: %v (%v), want 0700", st.Mode().Perm(), err)
	}
}

// aclGrants reports whether a gives uid traverse through a mask that lets
// it count.
func aclGrants(a acl.ACL, uid uint32) bool {
	p, ok := a.User(uid)
	if !ok || p&acl.Execute == 0 {
		return false
	}
	for _, e := range a {
		if e.Tag == acl.Mask {
			return e.Perm&acl.Execute != 0
		}
	}
	return false
}

// TestSlurmUser: a root daemon with an init submits a user's step as that
// user, in a user namespace on the node, after letting the user through
// jobs/, its job's folder and images/ (for an image); root's steps, and
// every step where the state takes no ACLs, are root's batch jobs, which
// the run log's first line says.
func TestSlurmUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the daemon's choice of the batch job's user is root's")
	}
	state := t.TempDir()
	for _, d := range []string{"jobs/j1/runs/1", "images/abc"} {
		if err := os.MkdirAll(filepath.Join(state, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	const owner = 54321
	r := &slurmRun{b: &slurmBackend{init: "/opt/jobfs-init"}, owner: owner, state: state}
	s := StepSpec{Job: "j1", Owner: owner, Dir: filepath.Join(state, "images", "abc"), LogPath: filepath.Join(state, "jobs/j1/runs/1/log")}
	uid, gid, iso, note, err := r.user(s)
	if errors.Is(err, acl.ErrNotSupported) || errors.Is(r.b.acls(state), acl.ErrNotSupported) {
		t.Skipf("the temporary folder takes no ACLs: %v", err)
	}
	if err != nil || uid != owner || gid != primaryGroup(owner) || iso == nil || !iso.UserNS || iso.UID != owner || note != "" {
		t.Fatalf("user(owner %d) = %d %d %+v %q %v, want the owner in a user namespace", owner, uid, gid, iso, note, err)
	}
	for _, d := range []string{"jobs", "jobs/j1", "images"} {
		if a, err := acl.Get(filepath.Join(state, d)); err != nil || !aclGrants(a, owner) {
			t.Errorf("%s: ACL %v (%v), want traverse for uid %d", d, a, err, owner)
		}
	}
	if a, err := acl.Get(filepath.Join(state, "images", "abc")); err != nil || len(a) != 3 {
		t.Errorf("the image's own folder: ACL %v (%v), want none added", a, err)
	}
	if gaps := r.Gaps(exec.Limits{}); len(gaps) != 0 {
		t.Errorf("gaps = %q, want none", gaps)
	}
	// A grant that fails (here: no such job folder): root's batch job, the
	// init starting the step as the owner, and a line that says so.
	missing := s
	missing.Job = "gone"
	if uid, _, iso, note, err := r.user(missing); err != nil || uid != 0 || iso == nil || iso.UserNS || !strings.HasPrefix(note, fmt.Sprintf("jobfs: Slurm sees root, not uid %d: ", owner)) {
		t.Errorf("user() where the grant fails = %d %+v %q %v", uid, iso, note, err)
	}
	// Root's own job: root's batch job, without a user namespace.
	root := &slurmRun{b: r.b, owner: 0, state: state}
	if uid, _, iso, _, err := root.user(StepSpec{Job: "j1"}); err != nil || uid != 0 || iso == nil || iso.UserNS {
		t.Errorf("user(root) = %d %+v %v, want root's batch job and init", uid, iso, err)
	}
	// A state that takes no ACLs: root's batch job, said first in the log.
	noACL := &slurmBackend{init: "/opt/jobfs-init"}
	noACL.aclOnce.Do(func() { noACL.aclErr = acl.ErrNotSupported })
	r = &slurmRun{b: noACL, owner: owner, state: state}
	if uid, _, iso, _, err := r.user(s); err != nil || uid != 0 || iso == nil || iso.UserNS || iso.UID != owner {
		t.Errorf("user(owner) without ACLs = %d %+v %v, want root's batch job, the init starting the step as the owner", uid, iso, err)
	}
	if gaps := r.Gaps(exec.Limits{}); len(gaps) != 1 || !strings.HasPrefix(gaps[0], fmt.Sprintf("Slurm sees root, not uid %d: the state folder's file system takes no ACLs", owner)) {
		t.Errorf("gaps without ACLs = %q", gaps)
	}
}

// TestSlurmReadSmall: files the daemon reads back from a step's shim
// folder (which the step's owner may write) are read only as regular
// files, never through a link or from a FIFO.
func TestSlurmReadSmall(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("not yours\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link, fifo := filepath.Join(dir, slurmJobFile), filepath.Join(dir, "fifo")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, fifo} {
		if b, err := readSmall(p); err == nil {
			t.Errorf("readSmall(%s) = %q, want refused", p, b)
		}
		if l := lastFileLine(p); l != "" {
			t.Errorf("lastFileLine(%s) = %q, want nothing", p, l)
		}
	}
	if err := os.Symlink(secret, filepath.Join(dir, slurmJobFile+".tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := writeFileSync(link, []byte("12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "not yours\n" {
		t.Errorf("writeFileSync wrote through a planted link: %q %v", b, err)
	}
	if b, err := readSmall(link); err != nil || string(b) != "12\n" {
		t.Errorf("readSmall = %q %v", b, err)
	}
	// A slurm_job the step's owner made (another user's Slurm job id in
	// it) is not the daemon's record.
	if os.Geteuid() == 0 {
		if err := os.Chown(link, 54321, 54321); err != nil {
			t.Fatal(err)
		}
		if b, err := readSmall(link); err == nil {
			t.Errorf("readSmall of the owner's file = %q, want refused", b)
		}
	}
}

// TestSlurmGrantConcurrent: owners whose steps are submitted at once all
// keep their entry on jobs/ (each grant reads the ACL and writes it back).
func TestSlurmGrantConcurrent(t *testing.T) {
	state := t.TempDir()
	if err := os.MkdirAll(filepath.Join(state, "jobs", "j1"), 0o700); err != nil {
		t.Fatal(err)
	}
	b := &slurmBackend{init: "/opt/jobfs-init"}
	if err := b.acls(state); err != nil {
		t.Skipf("the temporary folder takes no ACLs: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &slurmRun{b: b, owner: Owner(60000 + i), state: state}
			errs <- r.grant(StepSpec{Job: "j1", Owner: r.owner})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	a, err := acl.Get(filepath.Join(state, "jobs"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if !aclGrants(a, uint32(60000+i)) {
			t.Errorf("uid %d lost its entry on jobs/: %v", 60000+i, a)
		}
	}
}
