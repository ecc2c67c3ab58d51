package jobs

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// readerRate bounds, in bytes per second, what the live readers of one
// active run's log get together. Each byte a reader gets costs CPU twice
// (the daemon's copy and the reader's): 50 readers of a step writing as fast
// as it can would otherwise take the cores the step runs on. Readers fall
// behind a fast log instead, and catch up at full speed once the run ends;
// a slow log (anything a person reads as it comes) is never held back.
const readerRate = 32 << 20

// readerBurst is what readers of an idle log get at once.
const readerBurst = 1 << 20

// readerChunk is the least a reader is granted when it asks for more.
const readerChunk = 64 << 10

// ReaderBudget is the rate shared by the live readers of one active run's
// log (see readerRate); Follow hands it out. A read is charged for the
// bytes it returned, after it: a reader of a slow log asking for much and
// getting a line costs a line. A reader waits its turn while the readers
// before it are in debt.
type ReaderBudget struct {
	done    <-chan struct{} // the run is terminal: no more waiting
	closing <-chan struct{} // the daemon stops
	lim     *rate.Limiter
}

func newReaderBudget(done, closing <-chan struct{}) *ReaderBudget {
	return &ReaderBudget{done: done, closing: closing, lim: rate.NewLimiter(readerRate, readerBurst)}
}

// grant says how many of want bytes a read at now may return, and how long
// it waits first: the whole of what is left of the burst when that covers
// it, else a chunk (readers in debt take turns by chunks, not all at once).
func (b *ReaderBudget) grant(now time.Time, want int) (int, time.Duration) {
	n := min(want, readerBurst)
	if tokens := b.lim.TokensAt(now); tokens < float64(n) {
		n = min(want, max(int(tokens), readerChunk))
	}
	return n, b.lim.ReserveN(now, 0).DelayFrom(now) // reserving nothing: the wait for the debt
}

// charge counts bytes a read returned (at most the burst: a grant is).
func (b *ReaderBudget) charge(now time.Time, used int) {
	if used > 0 {
		b.lim.ReserveN(now, used) // its delay is the next reader's turn
	}
}

// Share is for a reader about to read want bytes: it returns how many it
// may read, after waiting its turn when the run's readers are in debt, and
// a function to call with how many of them the read did not use. It
// returns 0 when ctx is done or the daemon stops; once the run has ended
// it no longer waits.
func (b *ReaderBudget) Share(ctx context.Context, want int) (int, func(unused int)) {
	n, wait := b.grant(time.Now(), want)
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-b.done:
		case <-ctx.Done():
			return 0, func(int) {}
		case <-b.closing:
			return 0, func(int) {}
		}
	}
	return n, func(unused int) { b.charge(time.Now(), n-unused) }
}
