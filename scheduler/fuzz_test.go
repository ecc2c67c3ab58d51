package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzFrom are the instants FuzzParse compares Next from: an ordinary
// Thursday, the Europe/Oslo spring-forward and fall-back nights, a leap day
// and New Year's Eve.
var fuzzFrom = []time.Time{
	time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC),
	time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC),
	time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC),
	time.Date(2028, 2, 28, 23, 59, 59, 0, time.UTC),
	time.Date(2026, 12, 31, 23, 59, 30, 0, time.UTC),
}

// FuzzParse: Parse never panics; an error is one line and never wraps
// ErrEmpty unless the line is empty; an accepted line reads back (Spec.Line)
// as a line that parses to the same Line, zone, catchup flag and ticks.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"0 9 * * Mon-Fri  # weekdays at nine", "TZ=Europe/Oslo */15 * * * *", "CRON_TZ=America/New_York 30 8 * * *",
		"@hourly", "@Daily", "TZ=Europe/Oslo @daily", "@every 10m", "@every 1h30m", "@every 1s", "0 0 1 jan *",
		"0 9 * * * # catchup", "0 9 * * *   #catchup  \n", "\t*/20  8-18 1,15 *  * \n", "0 0 29 2 *",
		"0 12 13 * Fri", "61 * * * *", "*/0 * * * *", "0 0 30 2 *", "* * * * * *", "@every 100ms",
		"TZ=Mars/Olympus * * * * *", "TZ=Local * * * * *", "# nothing", "", "0 2-3 * * * # DST", "TZ=Europe/Oslo 30 2 * * *",
		"? ? ? ? ?", "0 0 L * *", "1-5/2,7 */3 1-31/10 JAN-dec/2 sun-SAT", "@every 9999999h", "0\u00a09 * * *",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, err := Parse(line)
		if err != nil {
			if errors.Is(err, ErrEmpty) {
				if s.Schedule != nil {
					t.Fatalf("Parse(%q): ErrEmpty with a schedule", line)
				}
				if !s.Next(fuzzFrom[0]).IsZero() {
					t.Fatalf("Parse(%q): ErrEmpty spec fires", line)
				}
				return
			}
			if strings.Contains(err.Error(), "\n") && !strings.ContainsAny(line, "\n\r") {
				t.Fatalf("Parse(%q): error of several lines: %q", line, err)
			}
			return
		}
		if s.Schedule == nil || s.Location == nil {
			t.Fatalf("Parse(%q) accepted without a schedule or location: %+v", line, s)
		}
		if strings.ContainsAny(s.Line, "\n\r") || s.Line != strings.TrimSpace(s.Line) {
			t.Fatalf("Parse(%q).Line = %q: not one trimmed line", line, s.Line)
		}
		again, err := Parse(s.Line)
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its Line %q is refused: %v", line, s.Line, err)
		}
		if again.Line != s.Line {
			t.Fatalf("Parse(%q).Line = %q, which reads back as %q", line, s.Line, again.Line)
		}
		if again.Location.String() != s.Location.String() || again.Catchup != s.Catchup {
			t.Fatalf("Parse(%q): zone %v catchup %v, reparsed %q: zone %v catchup %v",
				line, s.Location, s.Catchup, s.Line, again.Location, again.Catchup)
		}
		for _, from := range fuzzFrom {
			a, b := from, from
			for i := 0; i < 3; i++ {
				na, nb := s.Next(a), again.Next(b)
				if !na.Equal(nb) {
					t.Fatalf("Parse(%q): tick %d after %v is %v, but %q gives %v", line, i+1, from, na, s.Line, nb)
				}
				if na.IsZero() {
					break
				}
				if !na.After(a) || na.Location() != time.UTC {
					t.Fatalf("Parse(%q): Next(%v) = %v: not strictly later, or not UTC", line, a, na)
				}
				a, b = na, nb
			}
		}
	})
}
