package jobs

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxJobLog is the size past which a job's event log rotates to
// log.1 unless Options.MaxJobLog (--max-job-log) says otherwise.
const DefaultMaxJobLog = 4 << 20

// foldWindow is how long repeats of one event are counted before a line
// says how many there were (a skipped tick every second: one line an hour).
const foldWindow = time.Hour

// fold counts the repeats of one event of a job that were not logged.
type fold struct {
	key     string    // what repeats
	summary string    // format of the line that counts them: n, since, last
	since   time.Time // the first one, logged in full
	last    time.Time
	n       int
}

// line is the text of the line that tells how many repeats were folded.
func (f fold) line() string {
	return fmt.Sprintf(f.summary, f.n, f.since.Format(time.RFC3339), f.last.Format(time.RFC3339))
}

// event appends one line `<RFC 3339 UTC> <text>` to the job's event log and
// logs it, with the job's owner and name (and run), to the daemon's log.
func (m *Manager) event(jobID, format string, args ...any) {
	m.logEvent(jobID, "", "", fmt.Sprintf(format, args...))
}

// eventFolded logs an event that may repeat many times (a skipped tick):
// the first is logged; repeats with the same key are only counted until
// another event of the job is logged or foldWindow has passed, and then one
// line, summary formatted with the count, the first time and the last,
// says how many there were.
func (m *Manager) eventFolded(jobID, key, summary, format string, args ...any) {
	m.logEvent(jobID, key, summary, fmt.Sprintf(format, args...))
}

func (m *Manager) logEvent(jobID, key, summary, text string) {
	text = logSafe(text)
	now := m.now().UTC()
	lines := m.foldLines(jobID, key, summary, text, now)
	if len(lines) == 0 {
		return
	}
	attrs := m.jobAttrs(jobID)
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(now.Format(time.RFC3339) + " " + l + "\n")
	}
	m.logMu.Lock()
	err := m.appendJobLog(jobID, b.String())
	m.logMu.Unlock()
	if err != nil {
		m.slog.Warn("cannot write job log: "+err.Error(), attrs...)
	}
	m.mirror(attrs, lines) // mirror.go
}

// logSafe makes text one line that a terminal shows as it is: a newline
// becomes a space, other control characters (a file name's carriage
// return or escape sequence, which could hide or rewrite the lines before
// it on the terminal of whoever reads the log) are written as \xNN, and
// the invisible format characters (bidirectional overrides, line and
// paragraph separators, zero-width ones) as \u{NNNN}; bytes that are not
// UTF-8 become U+FFFD.
func logSafe(text string) string {
	clean := true
	for _, r := range text {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError || unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029 {
			clean = false
			break
		}
	}
	if clean {
		return text
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(text, "\uFFFD") {
		switch {
		case r == '\n':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, "\\x%02x", r)
		case unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, "\\u{%04X}", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// RefuseRepeated is Refuse for a refusal one caller can repeat without end
// (an open past a limit): the first is logged, repeats with the same key
// are counted into one line (as skipped ticks are).
func (m *Manager) RefuseRepeated(jobID, key, what, reason string) error {
	pct := func(s string) string { return strings.ReplaceAll(logSafe(s), "%", "%%") } // the summary is a format
	m.eventFolded(jobID, key, pct(what)+" rejected %d more times since %s (the last at %s): "+pct(reason), "%s rejected: %s", what, reason)
	return errorf(ErrInvalid, "%s: %s", what, reason)
}

// foldLines decides what of an event goes into the log: nothing when it
// repeats a folded one, else the count of the repeats before it (if any)
// and its own text.
func (m *Manager) foldLines(jobID, key, summary, text string, now time.Time) []string {
	m.logMu.Lock()
	defer m.logMu.Unlock()
	f, folding := m.folds[jobID]
	if folding && key != "" && f.key == key && now.Sub(f.since) < foldWindow {
		f.n++
		f.last = now
		m.folds[jobID] = f
		return nil
	}
	var lines []string
	if folding {
		delete(m.folds, jobID)
		if f.n > 0 {
			lines = append(lines, f.line())
		}
	}
	if key != "" {
		m.folds[jobID] = fold{key: key, summary: summary, since: now, last: now}
	}
	return append(lines, text)
}

// appendJobLog appends text to the job's log, first moving a log that
// would grow past MaxJobLog to log.1 (replacing the one there). m.logMu
// is held: it serialises the appends and the rotation.
func (m *Manager) appendJobLog(jobID, text string) error {
	path := m.JobLogPath(jobID)
	if st, err := os.Stat(path); err == nil && st.Size() > 0 && st.Size()+int64(len(text)) > m.opts.MaxJobLog {
		if err := os.Rename(path, path+".1"); err != nil {
			// Keep logging into the full log rather than lose the line.
			text += m.now().UTC().Format(time.RFC3339) + " jobfs: cannot rotate this log to log.1: " + err.Error() + "\n"
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// jobAttrs names a job in the daemon's log: its owner and name (its id
// when it is gone).
func (m *Manager) jobAttrs(jobID string) []any {
	j, err := m.store.Job(jobID)
	if err != nil {
		return []any{slog.String("job", jobID)}
	}
	return []any{slog.String("owner", m.ownerName(j.Owner)), slog.String("job", j.Name)}
}

// runAttrs names a run in the daemon's log.
func (m *Manager) runAttrs(jobID string, run uint64) []any {
	return append(m.jobAttrs(jobID), slog.Uint64("run", run))
}

// runPrefix finds the run an event line is about: "run 7 started".
var runPrefix = regexp.MustCompile(`^run (\d+)\b`)

func runAttr(line string) []any {
	if s := runPrefix.FindStringSubmatch(line); s != nil {
		if n, err := strconv.ParseUint(s[1], 10, 64); err == nil {
			return []any{slog.Uint64("run", n)}
		}
	}
	return nil
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
	f, err := os.OpenFile(m.RunLogPath(jobID, run), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		text := logSafe(line) + "\n"
		if !endsLine(f) { // a step's last line without its newline: ours starts a line of its own
			text = "\n" + text
		}
		_, err = f.WriteString(text)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		m.slog.Warn(fmt.Sprintf("cannot write run log (%v): %s", err, line), m.runAttrs(jobID, run)...)
	}
}

// endsLine reports whether f is empty or ends with a newline (an
// unreadable end counts as one: the line is appended as before).
func endsLine(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return true
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, st.Size()-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

// Refuse logs that a user's operation on what was refused as invalid, and
// returns the ErrInvalid error to hand back.
func (m *Manager) Refuse(jobID, what, reason string) error {
	return m.reject(jobID, what, errorf(ErrInvalid, "%s: %s", what, reason))
}

// flushFolds writes, for every job whose repeated events are still being
// counted, the line that counts them: at Close, so a stop loses no count.
func (m *Manager) flushFolds() {
	defer m.flushMirrors() // mirror.go: after the folds' lines, which may be held too
	m.logMu.Lock()
	pending := m.folds
	m.folds = map[string]fold{}
	m.logMu.Unlock()
	for jobID, f := range pending {
		if f.n == 0 {
			continue
		}
		line := f.line()
		m.logMu.Lock()
		err := m.appendJobLog(jobID, m.now().UTC().Format(time.RFC3339)+" "+line+"\n")
		m.logMu.Unlock()
		if err != nil {
			m.slog.Warn("cannot write job log: "+err.Error(), m.jobAttrs(jobID)...)
		}
		m.mirror(m.jobAttrs(jobID), []string{line})
	}
}
