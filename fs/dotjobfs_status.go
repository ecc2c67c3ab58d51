package fs

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/jobfs/jobfs/jobs"
)

// renderStatus writes .jobfs/status: one line per job the caller may see
// (their own, those shared with them; root: all), runs or not, in columns
// that `column -t` and awk split on spaces ("-" where there is no value).
func (t *tree) renderStatus(ctx context.Context, w *bytes.Buffer) error {
	list, err := t.visibleJobs(ctx)
	if err != nil {
		return err
	}
	names := map[jobs.Owner]string{} // one passwd lookup per owner
	for _, j := range list {
		if _, ok := names[j.Owner]; !ok {
			names[j.Owner] = jobs.UserName(j.Owner)
		}
	}
	sort.Slice(list, func(i, k int) bool {
		a, b := list[i], list[k]
		if a.Owner != b.Owner {
			return names[a.Owner] < names[b.Owner]
		}
		return a.Name < b.Name
	})
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if _, err := fmt.Fprintln(tw, "JOB\tOWNER\tSTATE\tLAST\tSTATUS\tDURATION\tNEXT"); err != nil {
		return err
	}
	now := time.Now()
	for _, j := range list {
		if _, err := fmt.Fprintln(tw, t.statusLine(j, names[j.Owner], now)); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// visibleJobs lists the jobs the caller may see.
func (t *tree) visibleJobs(ctx context.Context) ([]jobs.Job, error) {
	if !t.multi {
		return t.m.Jobs(t.owner)
	}
	c := t.caller(ctx)
	if c.UID == 0 {
		return t.m.Store().AllJobs()
	}
	list, err := t.m.Jobs(c.UID)
	if err != nil {
		return nil, err
	}
	owners, err := t.m.OwnersVisibleTo(c)
	if err != nil {
		return nil, err
	}
	for _, o := range owners {
		shared, err := t.m.VisibleJobs(o, c)
		if err != nil {
			return nil, err
		}
		list = append(list, shared...)
	}
	return list, nil
}

// statusLine is a job's line: name, owner, state (idle, running, queued,
// disabled), its newest run's id, status and duration (elapsed while it
// runs), and when its schedule fires next.
func (t *tree) statusLine(j jobs.Job, owner string, now time.Time) string {
	last, status, duration := "-", "-", "-"
	var r jobs.Run
	if id, err := t.m.LatestRun(j.ID); err == nil && id > 0 {
		if r, err = t.m.Run(j.ID, id); err == nil {
			last, status = strconv.FormatUint(id, 10), string(r.Status)
			duration = runDuration(r, now)
		}
	}
	state := "idle"
	if v, err := t.m.ReadSetting(j.ID, "config/enabled"); err == nil && v == "false\n" {
		state = "disabled"
	}
	if t.m.Busy(j.ID) {
		state = "running"
		if r.Status == jobs.Pending {
			state = "queued"
		}
	}
	next := "-"
	if n := t.m.NextRun(j.ID); !n.IsZero() {
		next = n.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", j.Name, owner, state, last, status, duration, next)
}

// runDuration is how long r ran (so far, while it runs), in seconds.
func runDuration(r jobs.Run, now time.Time) string {
	switch {
	case r.StartedAt.IsZero():
		return "-"
	case r.EndedAt.IsZero():
		return fmt.Sprintf("%.3fs", now.Sub(r.StartedAt).Seconds())
	}
	return fmt.Sprintf("%.3fs", r.EndedAt.Sub(r.StartedAt).Seconds())
}
