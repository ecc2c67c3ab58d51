//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// logsTickScript prints the time (date +%s%N) every 20 ms, lines times,
// after a pause that lets the reader attach.
func logsTickScript(lines int) string {
	return fmt.Sprintf("#!/bin/sh\nsleep 1\ni=0\nwhile [ $i -lt %d ]; do\n  date +%%s%%N\n  sleep 0.02\n  i=$((i+1))\ndone\n", lines)
}

// BenchmarkStreamLatency: how long after a step prints a line a `stream`
// reader through the mount has it, against the same step's stdout read
// through a plain pipe, in the same benchmark run. Reported as p50 and p99
// in microseconds for both.
func BenchmarkStreamLatency(b *testing.B) {
	const lines = 150
	d, _ := benchDaemon(b, "") // no --debug: a log line per FUSE request would be measured too
	script := logsTickScript(lines)
	logsBenchSh(b, d.dir, `mkdir mnt/ticks && echo script > mnt/ticks/config/type && printf '%s' "$S" > mnt/ticks/config/script && echo 1000 > mnt/ticks/config/keep`, "S="+script)
	local := filepath.Join(d.dir, "ticks.sh")
	if err := os.WriteFile(local, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}

	var viaStream, viaPipe []time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		// Through jobfs: trigger, then read runs/N/stream from its start.
		logsBenchSh(b, d.dir, `echo '{}' > mnt/ticks/data`)
		f, err := os.Open(filepath.Join(d.mnt, "ticks/runs", strconv.Itoa(i), "stream"))
		if err != nil {
			b.Fatal(err)
		}
		opened := time.Now()
		lat := logsLatencies(b, f, opened)
		f.Close()
		if len(lat) < lines*9/10 {
			b.Fatalf("run %d: %d lines measured through stream, want about %d", i, len(lat), lines)
		}
		viaStream = append(viaStream, lat...)
		if st := logsBenchSh(b, d.dir, fmt.Sprintf(`cat mnt/ticks/runs/%d/status`, i)); st != "COMPLETED\n" {
			b.Fatalf("run %d ended %q", i, st)
		}

		// The same script, its stdout a plain pipe to this process.
		cmd := exec.Command(local)
		cmd.Dir = d.dir
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		lat = logsLatencies(b, pipe, time.Now())
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		viaPipe = append(viaPipe, lat...)
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(logsPercentile(viaStream, 50)), "stream-p50-µs")
	b.ReportMetric(us(logsPercentile(viaStream, 99)), "stream-p99-µs")
	b.ReportMetric(us(logsPercentile(viaPipe, 50)), "pipe-p50-µs")
	b.ReportMetric(us(logsPercentile(viaPipe, 99)), "pipe-p99-µs")
}

// logsLatencies reads lines of date +%s%N from r until EOF and returns,
// for each line printed after since, how long after its time it was read.
func logsLatencies(b *testing.B, r io.Reader, since time.Time) []time.Duration {
	b.Helper()
	var out []time.Duration
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		now := time.Now()
		if line != "" {
			ns, perr := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			if perr != nil {
				if strings.HasPrefix(line, "limits not enforced") {
					continue
				}
				b.Fatalf("not a date +%%s%%N line: %q", line)
			}
			if printed := time.Unix(0, ns); printed.After(since) {
				out = append(out, now.Sub(printed))
			}
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// logsPercentile is the p-th percentile (nearest rank) of ds.
func logsPercentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

// logsBenchSh runs script with bash (as sh) in dir and fails b unless it
// exits 0; it returns stdout.
func logsBenchSh(b *testing.B, dir, script string, env ...string) string {
	b.Helper()
	cmd := exec.Command("/bin/bash", "-c", script)
	cmd.Args[0] = "sh"
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"LC_ALL=C", "LANG=C"}, env...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b.Fatalf("$ %s\n%v\nstdout: %q\nstderr: %q", script, err, stdout.String(), stderr.String())
		}
	case <-time.After(shTimeout):
		cmd.Process.Kill()
		<-done
		b.Fatalf("$ %s: not done within %v", script, shTimeout)
	}
	return stdout.String()
}
