package jobs

import (
	"testing"
	"time"
)

// TestReaderBudget follows one budget through a fixed clock: the numbers
// are computed from the rate, not measured.
func TestReaderBudget(t *testing.T) {
	b := newReaderBudget(nil, nil)
	t0 := time.Unix(1000, 0)
	if n, wait := b.grant(t0, 4<<20); n != readerBurst || wait != 0 {
		t.Fatalf("first grant = %d, %v; want the burst (%d) at once", n, wait, readerBurst)
	}
	// A reader that asked for much and got a line costs a line: a slow
	// log is never held back.
	for i := 0; i < 1000; i++ {
		n, wait := b.grant(t0, 4<<20)
		if wait != 0 || n < readerBurst-80*1000 {
			t.Fatalf("read %d of a slow log: grant %d after %v; want most of the burst at once", i, n, wait)
		}
		b.charge(t0, 80)
	}
	// A fast log uses the burst up: then readers wait for the debt, and
	// get a chunk each.
	b.charge(t0, readerBurst-80*1000)
	b.charge(t0, 2*readerChunk)
	n, wait := b.grant(t0, 128<<10)
	perChunk := time.Duration(float64(readerChunk) / readerRate * float64(time.Second))
	if n != readerChunk || wait < 2*perChunk*9/10 || wait > 2*perChunk*11/10 {
		t.Fatalf("grant in debt = %d after %v; want a chunk after about two chunks' time (%v)", n, wait, 2*perChunk)
	}
	// Once the debt is paid by time, reading goes on at once.
	if n, wait := b.grant(t0.Add(wait), 10); n != 10 || wait != 0 {
		t.Errorf("grant after the wait = %d, %v; want 10 at once", n, wait)
	}
}
