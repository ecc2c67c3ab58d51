package scheduler

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // TZ= works on hosts without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
)

// ErrEmpty is returned by Parse for a line that is empty or only a comment:
// the job is not scheduled.
var ErrEmpty = errors.New("no schedule")

// fieldNames name the five fields in the order they are written.
var fieldNames = [5]string{"minute", "hour", "day of month", "month", "day of week"}

// fieldParsers read one field each; the bits land in the matching field of
// the SpecSchedule they return.
var fieldParsers = [5]cron.Parser{
	cron.NewParser(cron.Minute),
	cron.NewParser(cron.Hour),
	cron.NewParser(cron.Dom),
	cron.NewParser(cron.Month),
	cron.NewParser(cron.Dow),
}

// descriptors are the @names Parse accepts besides @every.
var descriptors = map[string]bool{
	"@yearly": true, "@annually": true, "@monthly": true, "@weekly": true,
	"@daily": true, "@midnight": true, "@hourly": true,
}

const fieldsWanted = "5 fields expected (minute hour day-of-month month day-of-week)"

// Parse reads a schedule line (see the package doc for the grammar). A line
// that is empty or only a comment returns ErrEmpty. Other errors are one line
// that quotes the schedule and says what is wrong, e.g.
//
//	schedule "61 * * * *": minute: end of range (61) above maximum (59)
func Parse(line string) (Spec, error) {
	line = strings.TrimSpace(line)
	spec, err := parse(line)
	if err != nil && !errors.Is(err, ErrEmpty) {
		return Spec{}, fmt.Errorf("schedule %q: %w", line, err)
	}
	return spec, err
}

// parse does Parse's work; its errors are not yet prefixed with the line.
func parse(line string) (Spec, error) {
	if strings.ContainsAny(line, "\n\r") {
		return Spec{}, errors.New("one line expected")
	}
	body, comment, _ := strings.Cut(line, "#")
	comment = strings.TrimSpace(comment)
	fields := strings.Fields(body)
	if len(fields) == 0 {
		return Spec{}, ErrEmpty
	}
	prefix, loc, err := zone(fields[0])
	if err != nil {
		return Spec{}, err
	}
	if prefix != "" {
		fields = fields[1:]
	}
	sched, fields, err := schedule(fields, loc)
	if err != nil {
		return Spec{}, err
	}
	return Spec{
		Line:     normalise(prefix, fields, comment),
		Schedule: sched,
		Location: loc,
		Catchup:  comment == "catchup",
	}, nil
}

// zone reads an optional TZ= or CRON_TZ= field. It returns the field ("" if
// the field is not a zone) and the location, UTC by default.
func zone(field string) (string, *time.Location, error) {
	key, name, ok := strings.Cut(field, "=")
	if !ok || (key != "TZ" && key != "CRON_TZ") {
		return "", time.UTC, nil
	}
	switch name {
	case "":
		return "", nil, fmt.Errorf("%s= needs a zone name, like %s=Europe/Oslo", key, key)
	case "Local":
		return "", nil, fmt.Errorf("%s=Local is not allowed: name the zone, like %s=Europe/Oslo", key, key)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return "", nil, fmt.Errorf("unknown time zone %q", name)
	}
	return field, loc, nil
}

// schedule turns the fields after the zone into a cron.Schedule. It returns
// the fields as they should read back.
func schedule(fields []string, loc *time.Location) (cron.Schedule, []string, error) {
	switch {
	case len(fields) == 0:
		return nil, nil, errors.New("a time zone needs a schedule after it, like TZ=Europe/Oslo 0 9 * * *")
	case strings.HasPrefix(fields[0], "@"):
		return descriptor(fields, loc)
	}
	sched, err := standard(fields, loc)
	return sched, fields, err
}

// descriptor reads @hourly and friends, and @every <duration>.
func descriptor(fields []string, loc *time.Location) (cron.Schedule, []string, error) {
	name := strings.ToLower(fields[0])
	fields[0] = name
	if name == "@every" {
		sched, err := every(fields[1:])
		return sched, fields, err
	}
	if !descriptors[name] {
		return nil, nil, fmt.Errorf("unknown descriptor %s (want @yearly, @annually, @monthly, @weekly, "+
			"@daily, @midnight, @hourly or @every <duration>)", fields[0])
	}
	if len(fields) > 1 {
		return nil, nil, fmt.Errorf("%s takes nothing after it", name)
	}
	sched, err := cron.ParseStandard(name)
	if err != nil {
		return nil, nil, err
	}
	return zoned(sched.(*cron.SpecSchedule), loc), fields, nil
}

// every reads the argument of @every: one Go duration of whole seconds, at
// least 1s.
func every(args []string) (cron.Schedule, error) {
	if len(args) != 1 {
		return nil, errors.New("@every takes one duration, like @every 10m or @every 1h30m")
	}
	d, err := time.ParseDuration(args[0])
	switch {
	case err != nil:
		return nil, fmt.Errorf("@every: %v", err)
	case d <= 0:
		return nil, fmt.Errorf("@every: the interval must be positive, not %s", args[0])
	case d < time.Second:
		return nil, fmt.Errorf("@every: the interval must be at least 1s, not %s", args[0])
	case d%time.Second != 0:
		return nil, fmt.Errorf("@every: the interval must be whole seconds, not %s", args[0])
	}
	return cron.Every(d), nil
}

// standard reads the five fields minute hour dom month dow.
func standard(fields []string, loc *time.Location) (cron.Schedule, error) {
	switch {
	case len(fields) == 6:
		return nil, fmt.Errorf("%s, found 6: a seconds field is not supported", fieldsWanted)
	case len(fields) != 5:
		return nil, fmt.Errorf("%s, found %d", fieldsWanted, len(fields))
	}
	var bits [5]*cron.SpecSchedule
	for i, f := range fields {
		b, err := field(i, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldNames[i], err)
		}
		bits[i] = b
	}
	s := &cron.SpecSchedule{
		Second: 1, // second 0
		Minute: bits[0].Minute, Hour: bits[1].Hour, Dom: bits[2].Dom,
		Month: bits[3].Month, Dow: bits[4].Dow,
	}
	if never(s) {
		return nil, errors.New("never fires: no date has this day of month and month")
	}
	return zoned(s, loc), nil
}

// field parses field number i with the cron parser, keeping its reason but
// dropping the echo of the field it appends.
func field(i int, f string) (*cron.SpecSchedule, error) {
	if strings.Trim(f, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ*?,-/") != "" {
		return nil, fmt.Errorf("%q is not a number, name, range, list or step", f)
	}
	s, err := fieldParsers[i].Parse(f)
	if err != nil {
		msg := strings.TrimSuffix(err.Error(), ": "+f)
		if strings.HasPrefix(msg, "failed to parse int from ") {
			msg = unreadable(i, f)
		}
		return nil, errors.New(msg)
	}
	return s.(*cron.SpecSchedule), nil
}

// unreadable says what field i accepts, for a value the cron parser could
// not read as a number.
func unreadable(i int, f string) string {
	switch fieldNames[i] {
	case "month":
		return fmt.Sprintf("cannot read %q: want 1-12 or a name Jan-Dec", f)
	case "day of week":
		return fmt.Sprintf("cannot read %q: want 0-6 or a name Sun-Sat", f)
	}
	return fmt.Sprintf("cannot read %q: want a number", f)
}

// never reports whether s matches no date at all (such as 0 0 30 2 *). It
// looks from a fixed instant, so Parse does not depend on the clock; the five
// years cron looks ahead from 2024 include 29 February 2024.
func never(s *cron.SpecSchedule) bool {
	t := *s
	t.Location = time.UTC
	return t.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero()
}

// normalise writes a parsed line back: single spaces between fields, the
// comment after " # ".
func normalise(prefix string, fields []string, comment string) string {
	if prefix != "" {
		fields = append([]string{prefix}, fields...)
	}
	line := strings.Join(fields, " ")
	if comment != "" {
		line += " # " + comment
	}
	return line
}
