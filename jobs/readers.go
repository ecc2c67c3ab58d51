package jobs

import (
	"context"
	"sync"
	"time"
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

// ReaderBudget is a token bucket shared by the live readers of one active
// run's log (see readerRate); Follow hands it out.
type ReaderBudget struct {
	done    <-chan struct{} // the run is terminal: no more waiting
	closing <-chan struct{} // the daemon stops
	mu      sync.Mutex
	tokens  float64
	last    time.Time
}

func newReaderBudget(done, closing <-chan struct{}) *ReaderBudget {
	return &ReaderBudget{done: done, closing: closing, tokens: readerBurst, last: time.Now()}
}

// reserve grants n of want bytes and says how long to wait before using
// them. When the bucket is short it reserves a chunk ahead (tokens go
// negative): each waiting reader sleeps once, in turn, instead of every
// reader waking for every chunk that comes free.
func (b *ReaderBudget) reserve(want int) (int, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(readerBurst, b.tokens+now.Sub(b.last).Seconds()*readerRate)
	b.last = now
	if b.tokens >= float64(want) || b.tokens >= readerChunk {
		n := min(want, int(b.tokens))
		b.tokens -= float64(n)
		return n, 0
	}
	// Grants are whole chunks: slivers would cost a round trip each.
	n := min(want, readerChunk)
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return n, 0
	}
	return n, time.Duration(-b.tokens / readerRate * float64(time.Second))
}

func (b *ReaderBudget) refund(n int) {
	b.mu.Lock()
	b.tokens = min(readerBurst, b.tokens+float64(n))
	b.mu.Unlock()
}

// Share is for a reader about to read want bytes: it returns how many it
// may read, after waiting its turn when the run's readers have used their
// share, and a function to give back what the read did not use. It returns
// 0 when ctx is done or the daemon stops; once the run has ended it no
// longer waits.
func (b *ReaderBudget) Share(ctx context.Context, want int) (int, func(unused int)) {
	n, wait := b.reserve(want)
	giveBack := func(unused int) {
		if unused > 0 {
			b.refund(unused)
		}
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-b.done:
		case <-ctx.Done():
			giveBack(n)
			return 0, func(int) {}
		case <-b.closing:
			giveBack(n)
			return 0, func(int) {}
		}
	}
	return n, giveBack
}
