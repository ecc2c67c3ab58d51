package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"
)

// MaxPayload bounds a data write.
const MaxPayload = 16 << 20

// CheckPayload reports why p cannot start a run, or nil. A payload is one
// JSON value in UTF-8 (RFC 8259), or only white space for a bare trigger.
func CheckPayload(p []byte) error {
	complete, err := scanPayload(p, true)
	if err != nil {
		return err
	}
	if !complete {
		return errorf(ErrInvalid, "invalid JSON: unexpected end of input (%d bytes)", len(p))
	}
	return nil
}

// PayloadComplete reports whether p is already a whole, valid payload (more
// bytes could still follow it).
func PayloadComplete(p []byte) bool {
	complete, err := scanPayload(p, false)
	return complete && err == nil
}

// PayloadWhole reports whether p already is one whole JSON object or
// array: self-delimiting (unlike a number, no byte can extend it), so only
// white space may follow it and its run can start before the last close.
func PayloadWhole(p []byte) bool {
	v := trimJSONSpace(p)
	return len(v) > 0 && (v[0] == '{' || v[0] == '[') && PayloadComplete(p)
}

// OnlyJSONSpace reports whether p holds nothing but JSON's white space:
// what may follow a whole payload and change nothing.
func OnlyJSONSpace(p []byte) bool { return len(trimJSONSpace(p)) == 0 }

// CheckPayloadPrefix is CheckPayload for a payload that may still be
// arriving: it fails only when no more bytes could make p valid.
func CheckPayloadPrefix(p []byte) error {
	_, err := scanPayload(p, false)
	return err
}

// scanPayload checks p, the whole payload when final, else what has
// arrived so far; complete says whether it is a whole value.
func scanPayload(p []byte, final bool) (complete bool, err error) {
	if len(p) > MaxPayload {
		return false, errorf(ErrTooLarge, "payload of %d bytes exceeds the %d byte limit", len(p), MaxPayload)
	}
	if err := checkText(p, final); err != nil {
		return false, err
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	var v json.RawMessage
	switch err := dec.Decode(&v); {
	case err == io.EOF:
		return true, nil // only white space: a bare trigger
	case errors.Is(err, io.ErrUnexpectedEOF):
		return false, nil
	case err != nil:
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return false, errorf(ErrInvalid, "invalid JSON at byte %d: %v", se.Offset, err)
		}
		return false, errorf(ErrInvalid, "invalid JSON: %v", err)
	}
	if rest := trimJSONSpace(p[dec.InputOffset():]); len(rest) > 0 {
		return false, errorf(ErrInvalid, "invalid JSON at byte %d: more than one value", dec.InputOffset()+1)
	}
	return true, nil
}

// checkText refuses what is not JSON text whatever its syntax, with its
// own reason: a NUL byte (printf '\0' and C strings add one) and bytes that
// are not UTF-8 (encoding/json would turn them into U+FFFD unnoticed). A
// rune cut at the end of p is refused only when final: the next write may
// finish it. Bytes are counted from 1, as in the syntax errors.
func checkText(p []byte, final bool) error {
	if i := bytes.IndexByte(p, 0); i >= 0 {
		return errorf(ErrInvalid, "invalid JSON at byte %d: NUL byte", i+1)
	}
	if utf8.Valid(p) {
		return nil
	}
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && n == 1 {
			if !final && !utf8.FullRune(p[i:]) {
				return nil // the start of a rune, at the end
			}
			return errorf(ErrInvalid, "invalid JSON at byte %d: not UTF-8 (0x%02x): a payload is UTF-8 text", i+1, p[i])
		}
		i += n
	}
	return nil
}

// trimJSONSpace drops JSON's white space (space, tab, CR, LF) only: a
// Unicode space after the value is not JSON.
func trimJSONSpace(p []byte) []byte { return bytes.Trim(p, " \t\r\n") }

// RejectPayload logs why a data write was refused; it returns err.
func (m *Manager) RejectPayload(jobID string, err error) error {
	m.event(jobID, "data rejected: %v", err)
	return err
}

// trigger starts a run of job id with payload p: it checks p, records the
// run durably as PENDING (started by "by", see TriggerAs), moves the staged
// input files into it and queues it. It returns the new run's id.
//
// m.mu is never held across the store's commit or the run folder's making:
// the run is reserved under it (reserveRun), committed outside it, published
// under it (publishRun), laid out outside it and queued under it, so that
// stream reads, Busy and Wait never wait for an fsync. triggerMu, which only
// triggers take, keeps them one at a time as before: ids, staged input and
// queue order stay in step (run 4 gets the staged files, not run 5).
// tick, when set, is a scheduled run's tick (Run.Tick).
func (m *Manager) trigger(jobID string, p []byte, t Trigger, by string, tick time.Time) (uint64, error) {
	if err := CheckPayload(p); err != nil {
		return 0, m.RejectPayload(jobID, err)
	}
	if m.isStopping() {
		return 0, errorf(ErrStopped, "jobfs is stopping: run not started")
	}
	if err := m.CheckStartable(jobID); err != nil {
		return 0, err
	}
	if len(trimJSONSpace(p)) == 0 {
		p = []byte("{}\n")
	}
	if err := m.reserveRun(jobID); err != nil {
		return 0, err
	}
	defer m.wg.Done() // taken by reserveRun: Close waits for this trigger
	m.triggerMu.Lock()
	id, failed, err := m.createRun(jobID, p, t, by, tick)
	m.triggerMu.Unlock()
	if failed != nil { // after the unlock: what finish sets off may trigger
		m.finish(runKey{jobID, id}, *failed)
	}
	return id, err
}

// createRun is trigger's part under triggerMu, for a reserved run: it
// commits, publishes, lays out and queues the run. A run that is stored
// but cannot be queued comes back with the outcome to finish it with.
func (m *Manager) createRun(jobID string, p []byte, t Trigger, by string, tick time.Time) (uint64, *Run, error) {
	laid := m.layAhead(jobID, p)
	began := time.Now() // the commit's real latency, for the metrics
	r, err := m.store.CreateRun(jobID, Run{Status: Pending, Trigger: t, TriggeredBy: by, Queued: m.now().UTC(), Tick: tick})
	m.metrics.observeCommit("queue", began)
	var id uint64 // 0 when the commit failed: what was laid goes
	if err == nil {
		id = r.ID
	}
	ready := laid.place(id)
	if err != nil {
		m.unreserveRun(jobID)
		return 0, nil, err
	}
	k := runKey{jobID, r.ID}
	if !m.publishRun(k) { // the daemon began to stop during the commit
		return r.ID, &Run{Status: Failed, Error: errShutdown.Error()}, nil
	}
	if err := m.prepareRun(jobID, r.ID, p, ready); err != nil {
		return r.ID, &Run{Status: Failed, Error: err.Error()}, nil
	}
	m.event(jobID, "run %d queued (%s)", r.ID, t)
	m.onQueued(jobID, r)
	if !m.queueRun(k) {
		return r.ID, &Run{Status: Failed, Error: errShutdown.Error()}, nil
	}
	m.clusterReady(k) // cluster: the other nodes may claim it now
	return r.ID, nil, nil
}

func (m *Manager) isStopping() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopping
}

// reserveRun counts a run of job jobID that is about to be committed: as
// active (Busy, and DeleteJob refuses), and as committing (prune leaves the
// job alone: the new run would be in the store but not yet in m.active). It
// adds to m.wg, so that Close waits until the run is published and ended.
func (m *Manager) reserveRun(jobID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopping {
		return errorf(ErrStopped, "jobfs is stopping: run not started")
	}
	if m.deleting[jobID] {
		return errorf(ErrNotFound, "the job is being deleted: run not started")
	}
	m.perJob[jobID]++
	m.committing[jobID]++
	m.wg.Add(1)
	return nil
}

// unreserveRun undoes reserveRun for a run whose commit failed.
func (m *Manager) unreserveRun(jobID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.doneCommitting(jobID)
	if m.perJob[jobID]--; m.perJob[jobID] <= 0 {
		delete(m.perJob, jobID)
	}
	m.startWaitingLocked(jobID) // a queued tick may have waited for it
}

// publishRun makes a reserved, committed run active (its count in perJob
// was taken by reserveRun). It reports false when the daemon is stopping:
// the caller ends the run.
func (m *Manager) publishRun(k runKey) bool {
	done := make(chan struct{})
	m.mu.Lock()
	defer m.mu.Unlock()
	m.doneCommitting(k.job)
	m.installLocked(k, &activeRun{done: done, bell: newBell(), readers: newReaderBudget(done, m.closing)}) // cluster_run.go
	return !m.stopping
}

func (m *Manager) doneCommitting(jobID string) {
	if m.committing[jobID]--; m.committing[jobID] <= 0 {
		delete(m.committing, jobID)
	}
}

// queueRun queues a published run for a slot unless Stop ended it while
// its folder was made. It reports false when the daemon began to stop
// meanwhile: Close ended the runs it found queued, the caller ends this one.
func (m *Manager) queueRun(k runKey) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.active[k]
	if a == nil || a.stopped || a.cancel != nil {
		return true // stopped meanwhile: Stop ends it
	}
	if m.stopping {
		return false
	}
	if m.cluster != nil && m.opts.NoExecute {
		a.remote = true // another node claims it
		return true
	}
	m.queue = append(m.queue, k)
	m.dispatchLocked()
	return true
}

// prepareRun lays out the run folder: input/ with input.json and the staged
// files (moved, not copied; a file still open for writing stays staged and
// the run's log names it), an empty output/ and a work/ folder. laid: the
// folder is there already but for the staged files (layAhead).
func (m *Manager) prepareRun(jobID string, id uint64, payload []byte, laid bool) error {
	dir := m.RunDir(jobID, id)
	if !laid {
		if err := m.makeRunDir(jobID, dir); err != nil {
			return err
		}
	}
	moved, left, err := m.moveStaged(jobID, filepath.Join(dir, "input"))
	for _, p := range left {
		m.appendRunLog(jobID, id, "jobfs: input/"+p+" is still open for writing: it stays staged for the next run")
	}
	if err != nil {
		return err
	}
	if moved > 0 { // nothing staged, nothing to walk: the trigger's usual case
		if err := m.dropInputLinksOut(jobID, id, filepath.Join(dir, "input")); err != nil {
			return err
		}
	}
	// Last: a cluster's other nodes wait for it (runReady), and a restart
	// resumes a queued run only once it is there (resumable).
	if laid && os.Rename(filepath.Join(dir, laidPayload), filepath.Join(dir, "input", "input.json")) == nil {
		return nil
	}
	return writeInputJSON(dir, payload)
}

// writeInputJSON writes the payload as the run's input/input.json.
func writeInputJSON(dir string, payload []byte) error {
	if err := os.WriteFile(filepath.Join(dir, "input", "input.json"), payload, 0o644); err != nil {
		return fmt.Errorf("write input.json: %w", err)
	}
	return nil
}

// nextRunDir is the folder in a job's runs/ where a run's folder is laid
// out while the run is being committed (layAhead); triggers are one at a
// time (triggerMu).
const nextRunDir = ".next"

// laidPayload is where layAhead puts the payload in the run's folder:
// prepareRun moves it to input/input.json once the staged files are in.
const laidPayload = ".input.json"

// layNext lays out a run's folder at next in the job's runs/ folder
// (layRunDir) with the payload beside input/. It makes nothing when the
// job's folder is gone (deleted before the trigger reserved its run: the
// commit fails too; once reserved, a delete is refused), and replaces what
// a daemon killed mid-trigger left at next.
func layNext(runs, next string, payload []byte) error {
	if err := os.Mkdir(runs, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.RemoveAll(next); err != nil {
		return err
	}
	if err := layRunDir(next); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(next, laidPayload), payload, 0o644)
}

// laidRun is a run folder laid out ahead of its commit, or nothing.
type laidRun struct {
	m    *Manager
	job  string
	dir  string     // "": nothing laid
	done chan error // the layout's end
}

// layAhead lays out the run folder of a run about to be committed (layNext)
// in runs/.next, while the store's commit syncs the disk: off the
// trigger's path, the folder (0.45 ms p50 on a 2-core VM's disk alone)
// took 0.05-0.2 ms from `echo > data`'s write p50 (A/B, triggers 60 ms
// apart; back to back the VM's noise hid it). The staged files are moved
// and the payload put in input/ only once the run is committed
// (prepareRun). A daemon killed meanwhile leaves runs/.next, which the
// job's next trigger or the next start (recover) removes. A cluster's
// nodes share the state folder, and so a job's runs/, so they lay out
// their runs after the commit.
func (m *Manager) layAhead(jobID string, payload []byte) laidRun {
	if m.cluster != nil {
		return laidRun{}
	}
	runs := filepath.Join(m.jobDir(jobID), "runs")
	l := laidRun{m: m, job: jobID, dir: filepath.Join(runs, nextRunDir), done: make(chan error, 1)}
	go func() { l.done <- layNext(runs, l.dir, payload) }()
	return l
}

// place waits for the layout and moves it to run id's folder, or removes
// it (id 0: the commit failed). It reports whether the run's folder is
// laid out; if not, prepareRun makes it as before.
func (l laidRun) place(id uint64) bool {
	if l.dir == "" {
		return false
	}
	err := <-l.done
	if err == nil && id != 0 {
		if err = os.Rename(l.dir, l.m.RunDir(l.job, id)); err == nil {
			return true
		}
	}
	_ = os.RemoveAll(l.dir) // prepareRun makes the folder, and says why it cannot
	return false
}

// dropLaid removes what a daemon killed mid-trigger left in job jobID's
// runs/ (layAhead).
func (m *Manager) dropLaid(jobID string) {
	_ = os.RemoveAll(filepath.Join(m.jobDir(jobID), "runs", nextRunDir)) // gone already: fine
}
