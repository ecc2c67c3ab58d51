package jobs

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The daemon's log repeats each job's events (logEvent), and any user can
// make events without end: a refused write is one line, and a shell loop
// makes thousands a second. A job's log is capped (--max-job-log); the
// daemon's log, which every user shares, is not (a journal, or STATE/
// jobfs.log under mount.fuse3). So each owner's events reach it at
// mirrorRate a second, in bursts of mirrorBurst; past that they are
// counted and said in one line when the owner's next one passes (or when
// the daemon stops). The job's log keeps every event.
const (
	mirrorRate  = 20
	mirrorBurst = 200
)

// mirrorGate is the daemon log's share of each owner's events.
type mirrorGate struct {
	mu     sync.Mutex
	owners map[string]*mirrorShare // by owner name: as many as the machine's users
}

type mirrorShare struct {
	lim   *rate.Limiter
	held  int       // events not repeated since the last one that was
	since time.Time // the first of them
}

// admit says whether an event of owner at now goes to the daemon's log,
// and, when it does, how many of the owner's events did not since when.
func (g *mirrorGate) admit(owner string, now time.Time) (ok bool, held int, since time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owners == nil {
		g.owners = map[string]*mirrorShare{}
	}
	s := g.owners[owner]
	if s == nil {
		s = &mirrorShare{lim: rate.NewLimiter(mirrorRate, mirrorBurst)}
		g.owners[owner] = s
	}
	if !s.lim.AllowN(now, 1) {
		if s.held == 0 {
			s.since = now
		}
		s.held++
		return false, 0, time.Time{}
	}
	held, since = s.held, s.since
	s.held = 0
	return true, held, since
}

// drain returns the count of each owner's events held back, and forgets them.
func (g *mirrorGate) drain() map[string]mirrorShare {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]mirrorShare{}
	for owner, s := range g.owners {
		if s.held > 0 {
			out[owner] = mirrorShare{held: s.held, since: s.since}
			s.held = 0
		}
	}
	return out
}

// heldLine says how many of an owner's events the daemon's log left out.
func heldLine(held int, since time.Time) string {
	return fmt.Sprintf("%d more job log lines of this owner since %s not repeated here (past %d a second; each is in its job's log)",
		held, since.UTC().Format(time.RFC3339), mirrorRate)
}

// mirror writes lines, events of the job named by attrs, to the daemon's
// log, within their owner's share.
func (m *Manager) mirror(attrs []any, lines []string) {
	owner := ""
	for _, a := range attrs {
		if at, ok := a.(slog.Attr); ok && at.Key == "owner" {
			owner = at.Value.String()
		}
	}
	for _, l := range lines {
		ok, held, since := m.mirrors.admit(owner, m.now())
		if !ok {
			continue
		}
		if held > 0 {
			m.slog.Warn(heldLine(held, since), slog.String("owner", owner))
		}
		m.slog.Info(l, append(attrs, runAttr(l)...)...)
	}
}

// flushMirrors says, at the daemon's stop, what each owner's share held back.
func (m *Manager) flushMirrors() {
	for owner, s := range m.mirrors.drain() {
		m.slog.Warn(heldLine(s.held, s.since), slog.String("owner", owner))
	}
}
