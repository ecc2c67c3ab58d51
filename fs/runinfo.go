package fs

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/jobfs/jobfs/jobs"
)

// The run files that describe a run as a whole: usage, duration,
// triggered_by and status.json (everything in one document, the role of
// docker inspect). status.json holds the same strings as the single files.

// usageField is one line of a usage file: its name and value, nil when
// unknown.
type usageField struct {
	name  string
	value *string
}

// usageFields renders u in the order of the usage file. CPU time is in
// seconds with microseconds; the rest are whole numbers.
func usageFields(u jobs.Usage) []usageField {
	num := func(v *uint64) *string {
		if v == nil {
			return nil
		}
		s := strconv.FormatUint(*v, 10)
		return &s
	}
	var cpu *string
	if u.CPUNanos != nil {
		s := strconv.FormatFloat(float64(*u.CPUNanos)/1e9, 'f', 6, 64)
		cpu = &s
	}
	return []usageField{
		{"cpu_seconds", cpu},
		{"memory_peak_bytes", num(u.MemoryPeak)},
		{"io_read_bytes", num(u.IORead)},
		{"io_write_bytes", num(u.IOWrite)},
		{"pids_peak", num(u.PidsPeak)},
	}
}

// usageText is the content of a usage file: "name value" lines, the value
// `unknown` where it was not measured (never 0 for that).
func usageText(u jobs.Usage) string {
	var b strings.Builder
	for _, f := range usageFields(u) {
		v := "unknown"
		if f.value != nil {
			v = *f.value
		}
		b.WriteString(f.name + " " + v + "\n")
	}
	return b.String()
}

// stepUsage is a step's usage, all unknown when it has none.
func stepUsage(s jobs.Step) jobs.Usage {
	if s.Usage == nil {
		return jobs.Usage{}
	}
	return *s.Usage
}

// usageChanged is when a run's usage last changed: at each step's end
// that brought a measure, and at the run's end, where it is recorded.
func usageChanged(r jobs.Run) time.Time {
	t := runEnded(r)
	for _, s := range r.Steps {
		if s.Usage != nil {
			t = jobs.Latest(t, s.EndedAt)
		}
	}
	return t
}

// seconds renders a duration in seconds with milliseconds; empty before
// the start, like started_at.
func seconds(d time.Duration, ok bool) string {
	if !ok {
		return ""
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// durationChanged: an active run's duration counts up from its start, and
// its mtime stays there (like a /proc counter), so tar of a live tree does
// not take it for a file changed under it; an ended run's is its end.
func durationChanged(r jobs.Run) time.Time { return orElse(r.EndedAt, started(r)) }

// statusChanged is when anything status.json shows last changed, but for
// an active run's duration (see durationChanged).
func statusChanged(r jobs.Run) time.Time {
	t := jobs.Latest(runChanged(r), usageChanged(r), stepsChanged(r))
	for _, s := range r.Steps {
		t = jobs.Latest(t, s.StartedAt, s.EndedAt)
	}
	return t
}

// durationFile is runs/<id>/duration, computed with the Manager's clock.
func (d *runDir) durationFile() *textFile {
	return &textFile{t: d.t, jobID: d.jobID, content: func() (string, time.Time, error) {
		r, err := d.t.m.Run(d.jobID, d.id)
		if err != nil {
			return "", time.Time{}, err
		}
		return line(seconds(r.Duration(d.t.m.Now()))), durationChanged(r), nil
	}}
}

// statusFile is runs/<id>/status.json.
func (d *runDir) statusFile() *textFile {
	return &textFile{t: d.t, jobID: d.jobID, content: func() (string, time.Time, error) {
		r, err := d.t.m.Run(d.jobID, d.id)
		if err != nil {
			return "", time.Time{}, err
		}
		j, err := d.t.m.JobByID(d.jobID)
		if err != nil {
			return "", time.Time{}, err
		}
		b, err := json.MarshalIndent(runDocOf(j, r, d.t.m.Now()), "", "  ")
		if err != nil {
			return "", time.Time{}, err
		}
		return string(b) + "\n", statusChanged(r), nil
	}}
}

// A hook's payload (config/on_failure, on_success) is the run's status.json.
func init() {
	jobs.StatusDocument = func(j jobs.Job, r jobs.Run, now time.Time) ([]byte, error) {
		b, err := json.MarshalIndent(runDocOf(j, r, now), "", "  ")
		return append(b, '\n'), err
	}
}

// runDoc is status.json. A value the single file shows empty is null.
type runDoc struct {
	ID          uint64         `json:"id"`
	Job         string         `json:"job"`
	Shortname   string         `json:"shortname"`
	Owner       string         `json:"owner"`
	OwnerUID    uint32         `json:"owner_uid"`
	Status      string         `json:"status"`
	ExitCode    *int           `json:"exit_code"`
	Error       *string        `json:"error"`
	Trigger     string         `json:"trigger"`
	TriggeredBy string         `json:"triggered_by"`
	QueuedAt    *string        `json:"queued_at"`
	StartedAt   *string        `json:"started_at"`
	EndedAt     *string        `json:"ended_at"`
	Duration    *json.Number   `json:"duration"`
	Result      *string        `json:"result"`
	Usage       map[string]any `json:"usage"`
	Steps       []stepDoc      `json:"steps"`
	RetryOf     *uint64        `json:"retry_of"`
	RetryAt     *string        `json:"retry_at"`
	Tick        *string        `json:"tick"` // a scheduled run's tick: its step began no earlier
}

type stepDoc struct {
	Label     string         `json:"label"`
	Status    string         `json:"status"`
	ExitCode  *int           `json:"exit_code"`
	Error     *string        `json:"error"`
	StartedAt *string        `json:"started_at"`
	EndedAt   *string        `json:"ended_at"`
	Duration  *json.Number   `json:"duration"`
	Usage     map[string]any `json:"usage"`
}

func runDocOf(j jobs.Job, r jobs.Run, now time.Time) runDoc {
	doc := runDoc{
		ID: r.ID, Job: j.Name, Shortname: j.ID, Owner: jobs.UserName(j.Owner), OwnerUID: j.Owner,
		Status: string(r.Status), ExitCode: r.ExitCode, Error: orNull(r.Error),
		Trigger: string(r.Trigger), TriggeredBy: r.Who(),
		QueuedAt: orNull(strings.TrimSpace(stamp(r.Queued))), StartedAt: orNull(strings.TrimSpace(stamp(r.StartedAt))),
		EndedAt: orNull(strings.TrimSpace(stamp(r.EndedAt))), Duration: number(seconds(r.Duration(now))),
		Result: orNull(r.Result), Usage: usageDoc(r.TotalUsage()), Steps: []stepDoc{},
		RetryAt: orNull(strings.TrimSpace(stamp(r.RetryAt))), Tick: orNull(strings.TrimSpace(stamp(r.Tick))),
	}
	if r.RetryOf != 0 {
		doc.RetryOf = &r.RetryOf
	}
	for _, s := range r.Steps {
		doc.Steps = append(doc.Steps, stepDoc{
			Label: s.Label, Status: string(s.Status), ExitCode: s.ExitCode, Error: orNull(s.Error),
			StartedAt: orNull(strings.TrimSpace(stamp(s.StartedAt))), EndedAt: orNull(strings.TrimSpace(stamp(s.EndedAt))),
			Duration: number(seconds(s.Duration(now))), Usage: usageDoc(stepUsage(s)),
		})
	}
	return doc
}

// usageDoc is a usage file as a JSON object: numbers, null where unknown.
func usageDoc(u jobs.Usage) map[string]any {
	out := map[string]any{}
	for _, f := range usageFields(u) {
		if f.value == nil {
			out[f.name] = nil
		} else {
			out[f.name] = json.Number(*f.value)
		}
	}
	return out
}

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func number(s string) *json.Number {
	if s == "" {
		return nil
	}
	n := json.Number(s)
	return &n
}
