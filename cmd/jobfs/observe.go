package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jobfs/jobfs/jobs"
)

// byteSize is a flag of a size in bytes, with an optional K, M or G
// (KiB, MiB, GiB): --max-job-log 4M.
type byteSize int64

func (s *byteSize) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *byteSize) Set(v string) error {
	mult := int64(1)
	num := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(v)), "B")
	num = strings.TrimSuffix(num, "I")
	for suffix, m := range map[string]int64{"K": 1 << 10, "M": 1 << 20, "G": 1 << 30} {
		if strings.HasSuffix(num, suffix) {
			num, mult = strings.TrimSuffix(num, suffix), m
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q: write a size in bytes, or with K, M or G (4M)", v)
	}
	*s = byteSize(n * mult)
	return nil
}

// newLoggers returns the daemon's logs for --log-format: text lines
// "DATE TIME jobfs: MESSAGE key=value ..." (owner, job, run), or one JSON
// object per line (time, level, msg, owner, job, run). The log.Logger is
// for the lines that name no job; it writes through the same handler.
func newLoggers(w io.Writer, format string) (*log.Logger, *slog.Logger, error) {
	switch format {
	case "", "text":
		l := newLogger(w)
		return l, slog.New(jobs.NewLineHandler(l)), nil
	case "json":
		h := slog.NewJSONHandler(w, nil)
		return slog.NewLogLogger(h, slog.LevelInfo), slog.New(h), nil
	}
	return nil, nil, fmt.Errorf("--log-format %q: write text or json", format)
}

// serveMetrics serves GET /metrics (Prometheus) at addr until the
// returned stop is called. Every series of every owner is there: bind it
// to 127.0.0.1 (or firewall it); MOUNT/.jobfs/metrics shows each user
// their own.
func serveMetrics(addr string, m *jobs.Manager, logger *log.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Printf("metrics: %v", err)
		}
	}()
	logger.Printf("metrics: http://%s/metrics", ln.Addr())
	return func() {
		if err := srv.Close(); err != nil {
			logger.Printf("metrics: close: %v", err)
		}
	}, nil
}
