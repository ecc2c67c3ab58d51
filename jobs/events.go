package jobs

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// event appends one line `<RFC 3339 UTC> <text>` to the job's event log and
// echoes it, with the job's name, to the daemon's log.
func (m *Manager) event(jobID, format string, args ...any) {
	text := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	line := m.now().UTC().Format(time.RFC3339) + " " + text + "\n"
	m.logMu.Lock()
	defer m.logMu.Unlock()
	f, err := os.OpenFile(m.JobLogPath(jobID), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		_, err = f.WriteString(line)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	name := jobID
	if j, jerr := m.store.Job(jobID); jerr == nil {
		name = j.Name
	}
	if err != nil {
		m.logger.Printf("%s: cannot write job log: %v", name, err)
	}
	m.logger.Printf("%s: %s", name, text)
}

// reject logs why a user's write was refused and returns err unchanged, so
// callers can write `return m.reject(id, "config/x", err)`.
func (m *Manager) reject(jobID, what string, err error) error {
	reason := err.Error()
	for _, p := range []string{what + ": ", what + " "} {
		reason = strings.TrimPrefix(reason, p)
	}
	m.event(jobID, "%s rejected: %s", what, reason)
	return err
}

// appendRunLog adds a line written by jobfs itself to a run's log; a line
// the log cannot take goes to the daemon's log instead.
func (m *Manager) appendRunLog(jobID string, run uint64, line string) {
	f, err := os.OpenFile(m.RunLogPath(jobID, run), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		_, err = f.WriteString(line + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		m.logger.Printf("job %s: run %d: cannot write run log (%v): %s", jobID, run, err, line)
	}
}

// Refuse logs that a user's operation on what was refused as invalid, and
// returns the ErrInvalid error to hand back.
func (m *Manager) Refuse(jobID, what, reason string) error {
	return m.reject(jobID, what, errorf(ErrInvalid, "%s: %s", what, reason))
}
