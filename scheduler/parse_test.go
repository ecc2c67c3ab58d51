package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// from is the instant the table's Next values are computed from: a Thursday.
var from = utc("2026-01-15T12:00:00Z")

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func mustParse(tb testing.TB, line string) Spec {
	tb.Helper()
	s, err := Parse(line)
	if err != nil {
		tb.Fatalf("Parse(%q): %v", line, err)
	}
	return s
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		line    string
		want    string // Spec.Line
		zone    string
		catchup bool
		next    string // Next(from)
	}{
		{"0 9 * * Mon-Fri  # weekdays at nine", "0 9 * * Mon-Fri # weekdays at nine", "UTC", false, "2026-01-16T09:00:00Z"},
		{"TZ=Europe/Oslo */15 * * * *", "TZ=Europe/Oslo */15 * * * *", "Europe/Oslo", false, "2026-01-15T12:15:00Z"},
		{"CRON_TZ=America/New_York 30 8 * * *", "CRON_TZ=America/New_York 30 8 * * *", "America/New_York", false, "2026-01-15T13:30:00Z"},
		{"TZ=Europe/Oslo 0 9 * * *", "TZ=Europe/Oslo 0 9 * * *", "Europe/Oslo", false, "2026-01-16T08:00:00Z"},
		{"@hourly", "@hourly", "UTC", false, "2026-01-15T13:00:00Z"},
		{"@daily", "@daily", "UTC", false, "2026-01-16T00:00:00Z"},
		{"@midnight", "@midnight", "UTC", false, "2026-01-16T00:00:00Z"},
		{"@weekly", "@weekly", "UTC", false, "2026-01-18T00:00:00Z"},
		{"@monthly", "@monthly", "UTC", false, "2026-02-01T00:00:00Z"},
		{"@yearly", "@yearly", "UTC", false, "2027-01-01T00:00:00Z"},
		{"@annually", "@annually", "UTC", false, "2027-01-01T00:00:00Z"},
		{"@Daily", "@daily", "UTC", false, "2026-01-16T00:00:00Z"},
		{"TZ=Europe/Oslo @daily", "TZ=Europe/Oslo @daily", "Europe/Oslo", false, "2026-01-15T23:00:00Z"},
		{"@every 10m", "@every 10m", "UTC", false, "2026-01-15T12:10:00Z"},
		{"@every 1s", "@every 1s", "UTC", false, "2026-01-15T12:00:01Z"},
		{"@every 1h30m", "@every 1h30m", "UTC", false, "2026-01-15T13:30:00Z"},
		{"0 0 1 jan *", "0 0 1 jan *", "UTC", false, "2027-01-01T00:00:00Z"},
		{"0 9 * * * # catchup", "0 9 * * * # catchup", "UTC", true, "2026-01-16T09:00:00Z"},
		{"0 9 * * *   #catchup  \n", "0 9 * * * # catchup", "UTC", true, "2026-01-16T09:00:00Z"},
		{"0 9 * * * # catchup later", "0 9 * * * # catchup later", "UTC", false, "2026-01-16T09:00:00Z"},
		{"0 9 * * * #", "0 9 * * *", "UTC", false, "2026-01-16T09:00:00Z"},
		{"\t*/20  8-18 1,15 *  * \n", "*/20 8-18 1,15 * *", "UTC", false, "2026-01-15T12:20:00Z"},
		{"0 0 29 2 *", "0 0 29 2 *", "UTC", false, "2028-02-29T00:00:00Z"},
		{"0 12 13 * Fri", "0 12 13 * Fri", "UTC", false, "2026-01-16T12:00:00Z"}, // dom or dow
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			s := mustParse(t, tt.line)
			if s.Line != tt.want {
				t.Errorf("Line = %q, want %q", s.Line, tt.want)
			}
			if s.Location.String() != tt.zone {
				t.Errorf("Location = %v, want %s", s.Location, tt.zone)
			}
			if s.Catchup != tt.catchup {
				t.Errorf("Catchup = %v, want %v", s.Catchup, tt.catchup)
			}
			if got := s.Next(from); !got.Equal(utc(tt.next)) || got.Location() != time.UTC {
				t.Errorf("Next(%v) = %v, want %s in UTC", from, got, tt.next)
			}
			again := mustParse(t, s.Line) // the line reads back as itself
			if again.Line != s.Line || !again.Next(from).Equal(s.Next(from)) {
				t.Errorf("reparsed %q: %q next %v", s.Line, again.Line, again.Next(from))
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	const five = "5 fields expected (minute hour day-of-month month day-of-week)"
	tests := []struct{ line, want string }{
		{"61 * * * *", `schedule "61 * * * *": minute: end of range (61) above maximum (59)`},
		{"* 24 * * *", `schedule "* 24 * * *": hour: end of range (24) above maximum (23)`},
		{"* * 0 * *", `schedule "* * 0 * *": day of month: beginning of range (0) below minimum (1)`},
		{"1,61 * * * *", `schedule "1,61 * * * *": minute: end of range (61) above maximum (59): 61`},
		{"5-1 * * * *", `schedule "5-1 * * * *": minute: beginning of range (5) beyond end of range (1)`},
		{"*/0 * * * *", `schedule "*/0 * * * *": minute: step of range should be a positive number`},
		{"x * * * *", `schedule "x * * * *": minute: cannot read "x": want a number`},
		{"* * * foo *", `schedule "* * * foo *": month: cannot read "foo": want 1-12 or a name Jan-Dec`},
		{"* * * * Mox", `schedule "* * * * Mox": day of week: cannot read "Mox": want 0-6 or a name Sun-Sat`},
		{"0 TZ=x * * *", `schedule "0 TZ=x * * *": hour: "TZ=x" is not a number, name, range, list or step`},
		{"0 0 30 2 *", `schedule "0 0 30 2 *": never fires: no date has this day of month and month`},
		{"* * * *", `schedule "* * * *": ` + five + `, found 4`},
		{"* * * * * *", `schedule "* * * * * *": ` + five + `, found 6: a seconds field is not supported`},
		{"bogus", `schedule "bogus": ` + five + `, found 1`},
		{"@every 0s", `schedule "@every 0s": @every: the interval must be positive, not 0s`},
		{"@every -1m", `schedule "@every -1m": @every: the interval must be positive, not -1m`},
		{"@every 100ms", `schedule "@every 100ms": @every: the interval must be at least 1s, not 100ms`},
		{"@every 1.5s", `schedule "@every 1.5s": @every: the interval must be whole seconds, not 1.5s`},
		{"@every 10x", `schedule "@every 10x": @every: time: unknown unit "x" in duration "10x"`},
		{"@every", `schedule "@every": @every takes one duration, like @every 10m or @every 1h30m`},
		{"@daily 9", `schedule "@daily 9": @daily takes nothing after it`},
		{"@fortnightly", `schedule "@fortnightly": unknown descriptor @fortnightly (want @yearly, @annually, ` +
			`@monthly, @weekly, @daily, @midnight, @hourly or @every <duration>)`},
		{"TZ=Mars/Olympus * * * * *", `schedule "TZ=Mars/Olympus * * * * *": unknown time zone "Mars/Olympus"`},
		{"CRON_TZ= * * * * *", `schedule "CRON_TZ= * * * * *": CRON_TZ= needs a zone name, like CRON_TZ=Europe/Oslo`},
		{"TZ=Local * * * * *", `schedule "TZ=Local * * * * *": TZ=Local is not allowed: name the zone, like TZ=Europe/Oslo`},
		{"TZ=Europe/Oslo # no schedule", `schedule "TZ=Europe/Oslo # no schedule": a time zone needs a schedule ` +
			`after it, like TZ=Europe/Oslo 0 9 * * *`},
		{"# why\n0 9 * * *", `schedule "# why\n0 9 * * *": one line expected`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			s, err := Parse(tt.line)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.line, s)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") || errors.Is(err, ErrEmpty) {
				t.Errorf("error %q: want one line, not ErrEmpty", err)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, line := range []string{"", "\n", "   \t", "# nothing yet", "  #\n"} {
		s, err := Parse(line)
		if !errors.Is(err, ErrEmpty) || s.Schedule != nil {
			t.Errorf("Parse(%q) = %+v, %v; want ErrEmpty", line, s, err)
		}
	}
}
