package jobs

import (
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// MaxSettingSize bounds any one setting; a script or chains file is the
// largest and should never need more.
const MaxSettingSize = 1 << 20

// Setting describes one writable file of a job: its path in the job folder,
// its default and how a written value is checked and normalised.
type Setting struct {
	Path    string // path below the job folder, e.g. "config/timeout"
	Default string
	// Lines is true for multi-line values kept byte for byte (script, chains,
	// description); otherwise the value is one line, stored without its
	// newline and read back with exactly one.
	Lines bool
	// check validates a value (already normalised) for job j.
	check func(m *Manager, j Job, v string) error
}

// Settings lists the writable settings of a job in path order.
var settingList = []Setting{
	{Path: "config/after", check: checkAfter},
	{Path: "config/backend", Default: "local", check: checkBackend},
	{Path: "config/chains", Lines: true, check: checkChains},
	{Path: "config/enabled", Default: "true", check: checkBool},
	{Path: "config/keep", Default: "100", check: checkKeep},
	{Path: "config/limits/cpu", Default: "100", check: checkLimit(0, int64(100*runtime.NumCPU()), "percent of one core (100 = one core, 0 = no limit), at most %d on this machine")},
	{Path: "config/limits/io", Default: "0", check: checkLimit(0, 1<<40, "bytes per second, read and write (0 = no limit), at most %d")},
	{Path: "config/limits/memory", Default: "512", check: checkLimit(0, totalMiB(), "MiB (0 = no limit), at most %d, the memory of this machine")},
	{Path: "config/limits/pids", Default: "512", check: checkPids},
	{Path: "config/network", Default: "host", check: checkNetwork},
	{Path: "config/on_failure", check: checkHook("config/on_failure")},
	{Path: "config/on_success", check: checkHook("config/on_success")},
	{Path: "config/overlap", Default: "skip", check: checkOverlap},
	{Path: "config/retries", Default: "0", check: checkRetries},
	{Path: "config/schedule", check: checkSchedule},
	{Path: "config/script", Lines: true, check: checkScript},
	{Path: "config/signatures", Lines: true, check: checkSignatures},
	{Path: "config/slurm", check: checkSlurm},
	{Path: "config/timeout", Default: "1h", check: checkTimeout},
	{Path: "config/type", Default: "chains", check: checkType},
	{Path: "description", Lines: true},
	{Path: "name", check: checkDisplayName},
}

// SettingFor returns the setting at path below a job folder.
func SettingFor(path string) (Setting, bool) {
	for _, s := range settingList {
		if s.Path == path {
			return s, true
		}
	}
	return Setting{}, false
}

// SettingPaths lists the paths of every setting below a job folder, sorted.
func SettingPaths() []string {
	out := make([]string, len(settingList))
	for i, s := range settingList {
		out[i] = s.Path
	}
	return out
}

// Normalize turns written bytes into the stored value: one-line settings lose
// surrounding white space (echo's newline), multi-line ones are kept as is.
func (s Setting) Normalize(raw string) string {
	if s.Lines {
		return raw
	}
	return strings.TrimSpace(raw)
}

// Render is what a read of the file returns for stored value v: exactly
// what a later write accepts as the same value. A one-line setting reads as
// its value and one newline (defaults included); a multi-line one byte for
// byte.
func (s Setting) Render(v string) string {
	if s.Lines {
		return v
	}
	return v + "\n"
}

func (s Setting) validate(m *Manager, j Job, v string) error {
	if len(v) > MaxSettingSize {
		return errorf(ErrTooLarge, "%s: %d bytes exceeds the %d byte limit", s.Path, len(v), MaxSettingSize)
	}
	if !utf8.ValidString(v) && s.Path != "config/script" {
		return errorf(ErrInvalid, "%s: not UTF-8 text", s.Path)
	}
	if !s.Lines && strings.ContainsAny(v, "\n\x00") {
		return errorf(ErrInvalid, "%s takes one line", s.Path)
	}
	if s.check == nil {
		return nil
	}
	return s.check(m, j, v)
}

func checkBool(_ *Manager, _ Job, v string) error {
	if v != "true" && v != "false" {
		return errorf(ErrInvalid, "config/enabled: %q: write true or false", v)
	}
	return nil
}

func checkType(_ *Manager, _ Job, v string) error {
	if v != "chains" && v != "script" {
		return errorf(ErrInvalid, "config/type: %q: write chains or script", v)
	}
	return nil
}

// MaxTimeout bounds config/timeout.
const MaxTimeout = 7 * 24 * time.Hour

// ParseTimeout reads a Go duration ("90s", "1h30m") or a whole number of
// seconds ("90", as Horus writes it).
func ParseTimeout(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

func checkTimeout(_ *Manager, _ Job, v string) error {
	d, err := ParseTimeout(v)
	if err != nil {
		return errorf(ErrInvalid, "config/timeout: %q: write a duration such as 30s, 10m or 1h, or whole seconds (90)", v)
	}
	if d <= 0 || d > MaxTimeout {
		return errorf(ErrInvalid, "config/timeout: %s: must be above 0 and at most %s", v, MaxTimeout)
	}
	return nil
}

func checkScript(_ *Manager, _ Job, v string) error {
	if v != "" && !strings.HasPrefix(v, "#!") {
		return errorf(ErrInvalid, "config/script must start with a #! line naming its interpreter, e.g. #!/bin/sh")
	}
	return nil
}

func checkDisplayName(_ *Manager, _ Job, v string) error {
	if len(v) > 256 {
		return errorf(ErrInvalid, "name: at most 256 bytes")
	}
	return nil
}

func checkChains(m *Manager, j Job, v string) error {
	_, err := m.resolveChains(j, v)
	return err
}

// MaxKeep bounds config/keep.
const MaxKeep = 1_000_000

func checkKeep(_ *Manager, _ Job, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxKeep {
		return errorf(ErrInvalid, "config/keep: %q: write how many finished runs to keep, 1 to %d", v, MaxKeep)
	}
	return nil
}

// checkLimit accepts a whole number in [lo, hi]; help says what it means.
func checkLimit(lo, hi int64, help string) func(*Manager, Job, string) error {
	return func(_ *Manager, _ Job, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			return errorf(ErrInvalid, "%q: write a whole number of "+help, v, hi)
		}
		return nil
	}
}

// MinPids is the smallest pids limit with which a step can start: the
// step init's one thread in the step's cgroup (on cgroup v1 only the
// thread that forks joins it, see exec/stepinit) and the step's own first
// process. Below it the step could never start, so the value is refused
// when written.
const MinPids = 2

// MinPidsV2 is that smallest limit on cgroup v2, where the init is cloned
// into the step's cgroup with every thread of its Go runtime: measured
// with the init's threads counted (a -race init, which has more), 7 failed
// now and then and 8 always started.
const MinPidsV2 = 8

// maxPids is the kernel's ceiling on process ids (pid_max's upper bound).
const maxPids = 4_194_304

// minPids is the smallest pids limit steps of this daemon start with.
func (m *Manager) minPids() int64 {
	if m != nil && m.opts.Cgroups != nil && m.opts.Cgroups.Version() == 2 {
		return MinPidsV2
	}
	return MinPids
}

func checkPids(m *Manager, _ Job, v string) error {
	least := m.minPids()
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > maxPids {
		return errorf(ErrInvalid, "%q: write a whole number of processes and threads, %d to %d (0 = no limit)", v, least, maxPids)
	}
	if n != 0 && n < least {
		return errorf(ErrInvalid, "%d is too small: the smallest pids limit with which a step starts is %d (its init and its first process); write %d or more, or 0 for no limit", n, least, least)
	}
	return nil
}

// totalMiB is the machine's memory (sysinfo(2): MemTotal of /proc/meminfo);
// when it cannot be read, a bound that refuses no limit for want of it.
func totalMiB() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 1 << 30
	}
	return int64(uint64(si.Totalram) * uint64(si.Unit) >> 20)
}
