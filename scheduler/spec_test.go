package scheduler

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// nextTicks returns the first n ticks of line after start, as RFC 3339 in UTC.
func nextTicks(t *testing.T, line, start string, n int) []string {
	t.Helper()
	s := mustParse(t, line)
	var out []string
	for tick := utc(start); len(out) < n; {
		tick = s.Next(tick)
		out = append(out, tick.Format(time.RFC3339))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNext(t *testing.T) {
	tests := []struct {
		name, line, start string
		want              []string
	}{
		{"weekdays skip the weekend", "0 9 * * Mon-Fri", "2026-11-21T12:00:00Z", // a Saturday
			[]string{"2026-11-23T09:00:00Z", "2026-11-24T09:00:00Z"}},
		{"Friday to Monday", "0 9 * * Mon-Fri", "2026-11-20T09:00:00Z",
			[]string{"2026-11-23T09:00:00Z"}},
		{"strictly after a tick", "@hourly", "2026-01-15T13:00:00Z",
			[]string{"2026-01-15T14:00:00Z"}},
		{"Oslo 09:00 is 08:00Z in winter", "TZ=Europe/Oslo 0 9 * * *", "2026-01-15T12:00:00Z",
			[]string{"2026-01-16T08:00:00Z"}},
		{"Oslo 09:00 is 07:00Z in summer", "TZ=Europe/Oslo 0 9 * * *", "2026-07-01T00:00:00Z",
			[]string{"2026-07-01T07:00:00Z"}},
		{"Oslo 09:00 across spring forward", "TZ=Europe/Oslo 0 9 * * *", "2026-03-27T12:00:00Z",
			[]string{"2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"}},
		{"Oslo 09:00 across fall back", "TZ=Europe/Oslo 0 9 * * *", "2026-10-23T12:00:00Z",
			[]string{"2026-10-24T07:00:00Z", "2026-10-25T08:00:00Z", "2026-10-26T08:00:00Z"}},
		// 02:00-03:00 does not exist on 2026-03-29: 02:30 fires at the jump, 03:00 CEST.
		{"Oslo 02:30 in the spring gap", "TZ=Europe/Oslo 30 2 * * *", "2026-03-27T12:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		{"Oslo two gap times fire once", "TZ=Europe/Oslo 15,45 2 * * *", "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:15:00Z"}},
		// 02:00-03:00 happens twice on 2026-10-25: 02:30 fires at 02:30 CEST only.
		{"Oslo 02:30 in the repeated hour", "TZ=Europe/Oslo 30 2 * * *", "2026-10-23T12:00:00Z",
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		{"Oslo repeated hour, from its second pass", "TZ=Europe/Oslo 30 2,3 * * *", "2026-10-25T01:10:00Z",
			[]string{"2026-10-25T02:30:00Z", "2026-10-26T01:30:00Z"}},
		{"Oslo every 15 minutes through spring forward", "TZ=Europe/Oslo */15 * * * *", "2026-03-29T00:30:00Z",
			[]string{"2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z"}},
		{"Oslo every 15 minutes through fall back", "TZ=Europe/Oslo */15 * * * *", "2026-10-25T00:30:00Z",
			[]string{"2026-10-25T00:45:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:15:00Z",
				"2026-10-25T01:30:00Z", "2026-10-25T01:45:00Z", "2026-10-25T02:00:00Z"}},
		{"Oslo @daily", "TZ=Europe/Oslo @daily", "2026-03-28T12:00:00Z",
			[]string{"2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"}},
		{"New York 08:30", "CRON_TZ=America/New_York 30 8 * * *", "2026-03-07T12:00:00Z",
			[]string{"2026-03-07T13:30:00Z", "2026-03-08T12:30:00Z"}},
		// Havana springs forward at midnight: 00:00 on 2026-03-08 does not exist.
		{"midnight in a midnight gap", "TZ=America/Havana @daily", "2026-03-07T12:00:00Z",
			[]string{"2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"}},
		{"@every ignores the zone", "TZ=Europe/Oslo @every 1h", "2026-03-29T00:30:00Z",
			[]string{"2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"}},
		{"@every drops sub-second", "@every 2s", "2026-01-15T12:00:00.7Z",
			[]string{"2026-01-15T12:00:02Z", "2026-01-15T12:00:04Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextTicks(t, tt.line, tt.start, len(tt.want)); !equal(got, tt.want) {
				t.Errorf("%q after %s:\n got %v\nwant %v", tt.line, tt.start, got, tt.want)
			}
		})
	}
}

// TestPlainCronDST shows why fixed-hour schedules go through wallSchedule:
// robfig/cron alone skips 02:30 on the spring-forward night and fires it twice
// on the fall-back night.
func TestPlainCronDST(t *testing.T) {
	plain, err := cron.ParseStandard("CRON_TZ=Europe/Oslo 30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	if got := plain.Next(utc("2026-03-28T12:00:00Z")).UTC(); !got.Equal(utc("2026-03-30T00:30:00Z")) {
		t.Errorf("robfig/cron spring: %v; the premise of wallSchedule changed", got)
	}
	if got := plain.Next(utc("2026-10-25T00:30:00Z")).UTC(); !got.Equal(utc("2026-10-25T01:30:00Z")) {
		t.Errorf("robfig/cron fall: %v; the premise of wallSchedule changed", got)
	}
}

func TestNextZeroSpec(t *testing.T) {
	var s Spec
	if got := s.Next(from); !got.IsZero() {
		t.Errorf("zero Spec Next = %v", got)
	}
	if got := s.Missed(from, from.Add(time.Hour), 10); got != 0 {
		t.Errorf("zero Spec Missed = %d", got)
	}
}

func TestMissed(t *testing.T) {
	tests := []struct {
		line, from, to string
		limit, want    int
	}{
		{"@hourly", "2026-01-15T00:30:00Z", "2026-01-15T05:30:00Z", 100, 5},
		{"@hourly", "2026-01-15T00:30:00Z", "2026-01-15T05:30:00Z", 3, 3},
		{"@hourly", "2026-01-15T01:00:00Z", "2026-01-15T05:00:00Z", 100, 4}, // (from, to]
		{"@hourly", "2026-01-15T01:00:00Z", "2026-01-15T01:59:59Z", 100, 0},
		{"@hourly", "2026-01-15T05:00:00Z", "2026-01-15T01:00:00Z", 100, 0}, // to before from
		{"@hourly", "2026-01-15T00:30:00Z", "2026-01-15T05:30:00Z", 0, 0},
		{"0 9 * * Mon-Fri", "2026-11-20T12:00:00Z", "2026-11-27T12:00:00Z", 100, 5},
		{"TZ=Europe/Oslo */15 * * * *", "2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z", 100, 16},
		{"TZ=Europe/Oslo 30 2 * * *", "2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z", 100, 1},
		{"@every 10m", "2026-01-15T00:00:00Z", "2026-01-15T01:00:00Z", 100, 6},
		{"* * * * *", "2000-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 1000, 1000}, // years: cheap
	}
	for _, tt := range tests {
		s := mustParse(t, tt.line)
		if got := s.Missed(utc(tt.from), utc(tt.to), tt.limit); got != tt.want {
			t.Errorf("%q Missed(%s, %s, %d) = %d, want %d", tt.line, tt.from, tt.to, tt.limit, got, tt.want)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	for _, line := range []string{"0 9 * * Mon-Fri", "TZ=Europe/Oslo */15 * * * *", "TZ=Europe/Oslo 30 2 * * *", "@every 10m"} {
		s := mustParse(b, line)
		b.Run(line, func(b *testing.B) {
			for b.Loop() {
				s.Next(from)
			}
		})
	}
}
