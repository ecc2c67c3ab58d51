package jobs

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jobfs/jobfs/exec/beneath"
	"golang.org/x/sys/unix"
)

// MaxRetries bounds the count of config/retries.
const MaxRetries = 100

// retryPolicy is config/retries parsed:
//
//	N [backoff DURATION [xFACTOR]] [max DURATION] [on CODE|timeout ...]
//
// N more tries at most; the k-th retry waits backoff x factor^(k-1),
// capped at max; with "on", only a run that ended with one of the exit
// codes (or TIMEOUT, with the word timeout) is retried.
type retryPolicy struct {
	count     int
	backoff   time.Duration
	factor    float64
	max       time.Duration
	codes     []int
	onTimeout bool
	filtered  bool // "on" was given
}

const retriesHelp = "write N [backoff 10s [x2]] [max 5m] [on CODE... | timeout], e.g. 3 backoff 10s x2 max 5m, or 0 for none"

// parseRetries reads config/retries; the error says what is wrong.
func parseRetries(v string) (retryPolicy, error) {
	p := retryPolicy{factor: 1}
	f := strings.Fields(v)
	if len(f) == 0 {
		return p, fmt.Errorf("empty: %s", retriesHelp)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 || n > MaxRetries {
		return p, fmt.Errorf("%q: the count of retries must be a whole number from 0 to %d; %s", f[0], MaxRetries, retriesHelp)
	}
	p.count = n
	for i := 1; i < len(f); i++ {
		switch f[i] {
		case "backoff", "max":
			if i+1 >= len(f) {
				return p, fmt.Errorf("%s needs a duration such as 10s", f[i])
			}
			d, err := ParseTimeout(f[i+1])
			if err != nil || d <= 0 || d > MaxTimeout {
				return p, fmt.Errorf("%s %q: write a duration above 0 and at most %s, such as 10s or 5m", f[i], f[i+1], MaxTimeout)
			}
			if f[i] == "backoff" {
				p.backoff = d
			} else {
				p.max = d
			}
			i++
			if f[i-1] == "backoff" && i+1 < len(f) && strings.HasPrefix(f[i+1], "x") {
				x, err := strconv.ParseFloat(f[i+1][1:], 64)
				if err != nil || x < 1 || x > 10 || math.IsNaN(x) {
					return p, fmt.Errorf("%q: the back-off factor is x followed by a number from 1 to 10, such as x2", f[i+1])
				}
				p.factor = x
				i++
			}
		case "on":
			p.filtered = true
			if i+1 >= len(f) {
				return p, fmt.Errorf("on needs exit codes (1 to 255) or timeout")
			}
			for i++; i < len(f); i++ {
				if f[i] == "timeout" {
					p.onTimeout = true
					continue
				}
				c, err := strconv.Atoi(f[i])
				if err != nil || c < 1 || c > 255 {
					return p, fmt.Errorf("on %q: write exit codes from 1 to 255, or timeout", f[i])
				}
				p.codes = append(p.codes, c)
			}
		default:
			return p, fmt.Errorf("%q is not understood: %s", f[i], retriesHelp)
		}
	}
	if p.max > 0 && p.backoff == 0 {
		return p, fmt.Errorf("max caps a backoff: write backoff too, e.g. 3 backoff 10s x2 max 5m")
	}
	return p, nil
}

func checkRetries(_ *Manager, _ Job, v string) error {
	if _, err := parseRetries(v); err != nil {
		return errorf(ErrInvalid, "config/retries: %v", err)
	}
	return nil
}

// delay is how long the attempt-th retry (1 for the first) waits.
func (p retryPolicy) delay(attempt int) time.Duration {
	d := float64(p.backoff) * math.Pow(p.factor, float64(attempt-1))
	if p.max > 0 && d > float64(p.max) {
		return p.max
	}
	if d > float64(MaxTimeout) {
		return MaxTimeout
	}
	return time.Duration(d)
}

// refusal says why an ended run r is not retried, or "" when it is: only
// a FAILED or TIMEOUT run (not one stopped, killed, or failed by a daemon
// shutdown) with tries left, and its exit code (or TIMEOUT) in the filter
// if there is one.
func (p retryPolicy) refusal(r Run) string {
	switch {
	case r.Status == Cancelled:
		return "it was stopped"
	case r.Error == errShutdown.Error():
		return "jobfs stopped while it ran"
	case r.Attempt >= p.count:
		return fmt.Sprintf("all %d retries used", p.count)
	case r.Status == Timeout && p.filtered && !p.onTimeout:
		return "TIMEOUT is not in the on list"
	case r.Status == Failed && p.filtered && (r.ExitCode == nil || !slices.Contains(p.codes, *r.ExitCode)):
		return "its exit code is not in the on list"
	case r.Status != Failed && r.Status != Timeout:
		return "it is " + string(r.Status)
	}
	return ""
}

// retryEnded runs the workflow follow-ups of an ended run (workflow.go):
// its retry (config/retries) or its hook (config/on_failure, on_success).
// (Named when it did retries only; onEnded calls it.)
func (m *Manager) retryEnded(jobID string, r Run) { m.followUp(jobID, r) }

// retryOf is the retry of run r that config/retries asks for; why says why
// there is none (empty when the policy does not apply at all).
func (m *Manager) retryOf(jobID string, r Run) (retry Run, ok bool, why string) {
	p, err := parseRetries(m.value(jobID, "config/retries"))
	if err != nil || p.count == 0 || r.Status == Completed {
		return Run{}, false, ""
	}
	if why := p.refusal(r); why != "" {
		return Run{}, false, why
	}
	if m.value(jobID, "config/enabled") == "false" {
		return Run{}, false, "config/enabled is false"
	}
	attempt := r.Attempt + 1
	now := m.now().UTC()
	return Run{Status: Pending, Trigger: Retry, TriggeredBy: "retry of " + itoa(r.ID), Queued: now,
		RetryOf: r.ID, Attempt: attempt, RetryAt: now.Add(p.delay(attempt)), HookDepth: r.HookDepth}, true, ""
}

// startRetry lays out a recorded retry's folder and arms it.
func (m *Manager) startRetry(jobID string, from Run, nr Run) {
	p, _ := parseRetries(m.value(jobID, "config/retries"))
	m.event(jobID, "run %d %s: retry %d of %d is run %d, at %s (config/retries)", from.ID, from.Status, nr.Attempt, p.count,
		nr.ID, nr.RetryAt.Format(time.RFC3339))
	if err := m.copyRunInput(jobID, from.ID, nr.ID); err != nil {
		m.appendRunLog(jobID, nr.ID, "jobfs: "+err.Error())
	}
	m.armRetry(jobID, nr)
}

// armRetry makes a pending retry active (counted, stoppable) and queues it
// at its time. A retry recorded just before a crash may lack its folder:
// it is made again.
func (m *Manager) armRetry(jobID string, r Run) {
	if _, err := os.Stat(filepath.Join(m.RunDir(jobID, r.ID), "input")); os.IsNotExist(err) {
		if err := m.copyRunInput(jobID, r.RetryOf, r.ID); err != nil {
			m.appendRunLog(jobID, r.ID, "jobfs: "+err.Error())
		}
	}
	k := runKey{jobID, r.ID}
	done := make(chan struct{})
	m.mu.Lock()
	a := m.installLocked(k, &activeRun{done: done, bell: newBell(), readers: newReaderBudget(done, m.closing)}) // cluster_run.go
	m.perJob[jobID]++
	a.timer = time.AfterFunc(max(time.Until(r.RetryAt), 0), func() { m.releaseRetry(k) })
	m.mu.Unlock()
	m.onQueued(jobID, r)
}

// releaseRetry queues a pending retry whose time has come, unless it was
// stopped meanwhile, the daemon is stopping (the run stays PENDING in the
// store for the next start) or the job was disabled.
func (m *Manager) releaseRetry(k runKey) {
	if m.value(k.job, "config/enabled") == "false" {
		m.mu.Lock()
		a := m.active[k]
		claim := a != nil && a.cancel == nil && !a.stopped && !m.stopping
		if claim {
			a.stopped = true // as Stop does: ended here, once
		}
		m.mu.Unlock()
		if claim {
			m.finish(k, Run{Status: Cancelled, Error: "not retried: config/enabled is false"})
		}
		return
	}
	m.learnOwner(k.job) // fair.go
	m.mu.Lock()
	a := m.active[k]
	if m.stopping || a == nil || a.stopped || a.cancel != nil || slices.Contains(m.queue, k) {
		m.mu.Unlock()
		return
	}
	m.queue = append(m.queue, k)
	m.dispatchLocked()
	m.mu.Unlock()
	m.event(k.job, "run %d queued (retry)", k.id)
}

// stopTimerLocked stops the timer of a pending retry; m.mu is held.
func (a *activeRun) stopTimerLocked() {
	if a != nil && a.timer != nil {
		a.timer.Stop()
	}
}

// pendingRetry reports whether a run recovered at start is a retry still
// waiting for its time: it is armed again instead of failed.
func pendingRetry(r Run) bool {
	return r.Status == Pending && !r.RetryAt.IsZero() && r.StartedAt.IsZero()
}

// copyRunInput copies run from's input/ (input.json and the input files)
// into run to's fresh folder, with output/, work/ and an empty log. The
// old run's folder is read without following any symlink (its step could
// have left some); what is neither a file nor a folder is skipped.
func (m *Manager) copyRunInput(jobID string, from, to uint64) error {
	dst := m.RunDir(jobID, to)
	if err := m.makeRunDir(jobID, dst); err != nil {
		return err
	}
	src := m.RunDir(jobID, from)
	err := beneath.Walk(src, "input", func(rel string, d os.DirEntry) error {
		switch {
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		case d.Type().IsRegular():
			return copyBeneath(src, rel, filepath.Join(dst, rel))
		case d.Type()&os.ModeSymlink != 0:
			return copyLink(src, rel, filepath.Join(dst, rel))
		}
		m.appendRunLog(jobID, to, "jobfs: "+rel+" of run "+itoa(from)+" is not a regular file: not copied")
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy the input of run %d: %w", from, err)
	}
	return m.dropInputLinksOut(jobID, to, filepath.Join(dst, "input")) // a run kept from before the check
}

// copyBeneath copies the regular file rel below root to dst (new).
func copyBeneath(root, rel, dst string) error {
	in, err := beneath.OpenFile(root, rel, unix.O_RDONLY|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read only: nothing to flush
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", rel)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if err := out.Chown(int(sys.Uid), int(sys.Gid)); err != nil {
			_ = out.Close() // the chown error is the one to report
			return err
		}
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close() // the copy error is the one to report
		return err
	}
	return out.Close()
}

// copyLink recreates the symlink rel below root at dst, with the same
// target; it is read, never followed.
func copyLink(root, rel, dst string) error {
	fd, err := beneath.Open(root, filepath.Dir(rel), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer beneath.CloseFd(fd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, filepath.Base(rel), buf)
	if err != nil {
		return &os.PathError{Op: "readlink", Path: rel, Err: err}
	}
	return os.Symlink(string(buf[:n]), dst)
}
