// Package scheduler reads a job's config/schedule line and calls a function
// at its ticks. It knows nothing of jobs, runs or FUSE: the caller decides
// what a tick does (enabled, overlap, starting a run).
//
// # Grammar
//
// One line, five fields, minute hour day-of-month month day-of-week, as in
// crontab(5) and robfig/cron/v3, which does the parsing:
//
//	0 9 * * Mon-Fri          names (Jan-Dec, Sun-Sat, any case), ranges
//	*/15 8-18 1,15 * *       steps and lists
//	@hourly @daily @midnight @weekly @monthly @yearly @annually
//	@every 10m               a Go duration of whole seconds, at least 1s,
//	                         counted from when the job is set (Scheduler.Set)
//	TZ=Europe/Oslo 0 9 * * * zone prefix (or CRON_TZ=); UTC by default
//	0 9 * * *  # catchup     a comment, after #
//
// When both day fields are restricted, a day matching either fires (cron's
// rule). A seconds field (six fields) is refused. An empty line, or one with
// only a comment, is ErrEmpty: the job is not scheduled. Every other error is
// one line quoting the schedule, naming the field and giving the cron
// parser's reason. Spec.Line is the line as it reads back: fields separated
// by one space, the comment after " # ".
//
// # Time zones and daylight saving
//
// Ticks are computed in the line's zone and returned in UTC; zone data is
// embedded (time/tzdata), so TZ= works on hosts without /usr/share/zoneinfo.
// A schedule whose hour field matches every hour (*/15 * * * *, 0 * * * *)
// follows real time through a clock change: every 15 minutes stays 15 minutes
// apart, through the repeated hour too. A schedule at fixed hours (30 2 * * *,
// 0 9-17 * * *, @daily) follows the wall clock, each matching wall time firing
// once: a time the clock skips when it springs forward fires at the jump
// (02:30 in Europe/Oslo on 2026-03-29 fires at 03:00 CEST), and a time the
// clock shows twice when it falls back fires the first time only (02:30 CEST
// on 2026-10-25, not again at 02:30 CET). Plain robfig/cron would skip the
// first and fire the second twice.
//
// # Catch-up (for the caller; DESIGN.md section 5)
//
// Ticks missed while jobfs was down are not replayed. At start the caller
// counts them with Spec.Missed from the last tick it acted on to now, with a
// small limit, and logs "missed N scheduled runs while jobfs was down". If N
// is at least 1 and the line's comment is exactly "catchup" (Spec.Catchup),
// it starts one run at once, for the latest missed tick, subject to enabled
// and overlap like any tick; never more than one.
//
// # Scheduler
//
// A Scheduler has one goroutine (Run) and one timer armed for the earliest
// tick of all jobs; Set and Remove may be called from any goroutine at any
// time and re-arm it. fire is called on Run's goroutine, never with the
// scheduler's lock held (so it may call Set, Remove and Next), one due job at
// a time: fire must be fast or hand the work off. A slow fire delays later
// ticks but never causes a burst: after fire returns, the job's next tick is
// computed from the current time, and ticks that passed meanwhile are
// skipped. Run also wakes at least once a minute, so a wall-clock jump
// (suspend, a clock step) delays a tick by at most a minute.
package scheduler
