package jobs

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Metrics (Prometheus). Labels are chosen so that their values stay few:
// owner (a local user), status (COMPLETED ... CANCELLED), trigger kind,
// the FUSE operation and errno. A job's name is never a label: users make
// jobs freely, and every name would be a series forever. Per-job numbers
// are in MOUNT/.jobfs/status instead.
type metrics struct {
	reg       *prometheus.Registry
	queued    *prometheus.CounterVec   // owner
	ended     *prometheus.CounterVec   // owner, status
	duration  *prometheus.HistogramVec // status
	toStart   prometheus.Histogram
	commit    *prometheus.HistogramVec // op
	readersG  *prometheus.GaugeVec     // kind: stream, events
	fuseOps   *prometheus.CounterVec   // op, errno
	eventsOut *prometheus.CounterVec   // outcome: delivered, missed

	namesMu sync.Mutex
	names   map[Owner]string // ownerName's memory
}

// Reader kinds of the readers gauge.
const (
	streamReader = "stream"
	eventsReader = "events"
)

// runBuckets span a trivial run (10 ms) to a long one (2 h).
var runBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200}

func newMetrics(m *Manager) *metrics {
	x := &metrics{
		reg: prometheus.NewRegistry(), names: map[Owner]string{},
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobfs_runs_queued_total", Help: "Runs triggered and recorded, by job owner.",
		}, []string{"owner"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobfs_runs_total", Help: "Runs ended, by job owner and final status.",
		}, []string{"owner", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "jobfs_run_duration_seconds", Help: "Time from a run's start to its end, by final status.",
			Buckets: runBuckets,
		}, []string{"status"}),
		toStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "jobfs_trigger_to_start_seconds", Help: "Time from a run's trigger to its first step's start (queueing, staging, cgroup and init).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "jobfs_store_commit_seconds", Help: "Durable store commits of a run's record: queue, start, end.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op"}),
		readersG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jobfs_stream_readers", Help: "Open blocking readers: runs/<id>/stream and .jobfs/events.",
		}, []string{"kind"}),
		fuseOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobfs_fuse_operations_total", Help: "FUSE requests answered, by operation and errno (0: success).",
		}, []string{"op", "errno"}),
		eventsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobfs_events_total", Help: "Events handed to .jobfs/events readers, or counted missed for a reader too slow.",
		}, []string{"outcome"}),
	}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jobfs_runs_active", Help: "Runs executing now (RUNNING, or starting).",
	}, func() float64 { r, _ := m.counts(); return float64(r) })
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jobfs_runs_queued", Help: "PENDING runs waiting for a slot (--max-active).",
	}, func() float64 { _, q := m.counts(); return float64(q) })
	x.reg.MustRegister(x.queued, x.ended, x.duration, x.toStart, x.commit, x.readersG, x.fuseOps, x.eventsOut,
		active, waiting, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, k := range []string{streamReader, eventsReader} {
		x.readersG.WithLabelValues(k) // shown at 0 from the start
	}
	return x
}

// ownerName is UserName(uid), remembered: it is a label of every run's
// metrics and a field of every event, and reading /etc/passwd each time
// would put file reads on the trigger path.
func (m *Manager) ownerName(uid Owner) string {
	x := m.metrics
	x.namesMu.Lock()
	n, ok := x.names[uid]
	x.namesMu.Unlock()
	if ok {
		return n
	}
	n = UserName(uid) // outside the lock: it reads /etc/passwd
	x.namesMu.Lock()
	defer x.namesMu.Unlock()
	if len(x.names) < 4096 { // bounded: a uid per local user
		x.names[uid] = n
	}
	return n
}

// counts returns the runs executing and the runs waiting for a slot.
func (m *Manager) counts() (running, queued int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running, len(m.queue)
}

func (x *metrics) readers(kind string, delta float64) {
	if x != nil {
		x.readersG.WithLabelValues(kind).Add(delta)
	}
}

// eventsDelivered counts events handed to readers and missed by them.
func (x *metrics) eventsDelivered(sent, missed float64) {
	if x == nil {
		return
	}
	if sent > 0 {
		x.eventsOut.WithLabelValues("delivered").Add(sent)
	}
	if missed > 0 {
		x.eventsOut.WithLabelValues("missed").Add(missed)
	}
}

// observeCommit records how long a store commit of op took.
func (x *metrics) observeCommit(op string, since time.Time) {
	if x != nil {
		x.commit.WithLabelValues(op).Observe(time.Since(since).Seconds())
	}
}

// runQueued counts a recorded trigger.
func (x *metrics) runQueued(owner string) {
	if x != nil {
		x.queued.WithLabelValues(owner).Inc()
	}
}

// runStarted records the trigger-to-start latency of r.
func (x *metrics) runStarted(r Run) {
	if x != nil && !r.Queued.IsZero() && !r.StartedAt.IsZero() {
		x.toStart.Observe(r.StartedAt.Sub(r.Queued).Seconds())
	}
}

// runEnded counts r, ended, and its duration when it started.
func (x *metrics) runEnded(owner string, r Run) {
	if x == nil {
		return
	}
	x.ended.WithLabelValues(owner, string(r.Status)).Inc()
	if !r.StartedAt.IsZero() && !r.EndedAt.IsZero() {
		x.duration.WithLabelValues(string(r.Status)).Observe(r.EndedAt.Sub(r.StartedAt).Seconds())
	}
}

// StreamReader counts an open runs/<id>/stream (delta 1) or its close (-1).
func (m *Manager) StreamReader(delta int) { m.metrics.readers(streamReader, float64(delta)) }

// FuseOp counts one answered FUSE request.
func (m *Manager) FuseOp(op string, errno int) {
	if m.metrics != nil {
		m.metrics.fuseOps.WithLabelValues(op, strconv.Itoa(errno)).Inc()
	}
}

// MetricsHandler serves every metric (all owners) over HTTP: whoever can
// reach --metrics sees all of them, so bind it to 127.0.0.1 or firewall it.
func (m *Manager) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// WriteMetrics writes the metrics in the text exposition format as caller
// c may see them: on a shared mount a user other than root sees only the
// series labelled with their own name; the rest (another owner's, and the
// daemon's totals: runs by status, commits, FUSE requests, which count
// every user's activity) are root's. all: a single-user mount, where every
// job is the caller's.
func (m *Manager) WriteMetrics(w io.Writer, c Caller, all bool) error {
	families, err := m.metrics.reg.Gather()
	if err != nil {
		return err
	}
	self := UserName(c.UID)
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if !all && c.UID != 0 {
			f.Metric = onlyOwner(f.Metric, self)
		}
		if len(f.Metric) == 0 {
			continue
		}
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return nil
}

// onlyOwner keeps the series labelled owner == self.
func onlyOwner(ms []*dto.Metric, self string) []*dto.Metric {
	out := ms[:0:0]
	for _, x := range ms {
		keep := false
		for _, l := range x.GetLabel() {
			if l.GetName() == "owner" {
				keep = l.GetValue() == self
			}
		}
		if keep {
			out = append(out, x)
		}
	}
	return out
}
