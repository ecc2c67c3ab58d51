package jobs

import (
	"context"
	"sync"
	"time"

	"github.com/jobfs/jobfs/exec/slurm"
)

// slurmPoller asks Slurm about every job the daemon follows with one
// squeue --json per interval, shared by all of them: Slurm's controller
// serves a whole cluster, so the daemon's load on it stays one query per
// interval however many steps run. While slurmctld does not answer, the
// last answer stands (runs stay as they are) and the next one reconciles.
type slurmPoller struct {
	c    *slurm.Client
	poll time.Duration

	mu      sync.Mutex
	ids     map[string]int        // followed job ids -> followers
	infos   map[string]slurm.Info // the last answer for each id
	missing map[string]int        // answers in a row that did not list the id
	err     error                 // the last query's error; nil once one succeeds
	tick    chan struct{}         // closed after each query
	polling bool
}

func newSlurmPoller(c *slurm.Client, poll time.Duration) *slurmPoller {
	return &slurmPoller{c: c, poll: poll, ids: map[string]int{}, infos: map[string]slurm.Info{},
		missing: map[string]int{}, tick: make(chan struct{})}
}

// follow adds id to what the poller asks about, until the returned func.
func (p *slurmPoller) follow(id string) (unfollow func()) {
	p.mu.Lock()
	p.ids[id]++
	if !p.polling {
		p.polling = true
		go p.loop()
	}
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.ids[id]--; p.ids[id] <= 0 {
			delete(p.ids, id)
			delete(p.infos, id)
			delete(p.missing, id)
		}
	}
}

// loop queries Slurm once per interval while any job is followed.
func (p *slurmPoller) loop() {
	for {
		p.mu.Lock()
		if len(p.ids) == 0 {
			p.polling = false
			p.mu.Unlock()
			return
		}
		ids := make([]string, 0, len(p.ids))
		for id := range p.ids {
			ids = append(ids, id)
		}
		p.mu.Unlock()
		infos, err := p.c.Query(context.Background(), ids) // bounded by the client's timeout
		p.record(ids, infos, err)
		time.Sleep(p.poll)
	}
}

// record keeps an answer and wakes the followers.
func (p *slurmPoller) record(ids []string, infos map[string]slurm.Info, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
	if err == nil {
		for _, id := range ids {
			if _, followed := p.ids[id]; !followed {
				continue
			}
			if in, ok := infos[id]; ok {
				p.infos[id], p.missing[id] = in, 0
			} else {
				p.missing[id]++
			}
		}
	}
	close(p.tick)
	p.tick = make(chan struct{})
}

// next is closed after the next answer (or failure) of Slurm.
func (p *slurmPoller) next() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tick
}

// state is the last answer about id: its record (ok when Slurm listed it
// once), how many answers in a row left it out, and the last query's error.
func (p *slurmPoller) state(id string) (info slurm.Info, ok bool, missing int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info, ok = p.infos[id]
	return info, ok, p.missing[id], p.err
}
