package jobs

import (
	"testing"
	"time"
)

func TestReaderBudget(t *testing.T) {
	b := newReaderBudget(nil, nil)
	n, wait := b.reserve(4 << 20)
	if n != readerBurst || wait != 0 {
		t.Fatalf("first reserve = %d, %v; want the burst (%d) at once", n, wait, readerBurst)
	}
	// Empty: each reader gets a chunk and a turn, one after the other.
	n1, w1 := b.reserve(128 << 10)
	n2, w2 := b.reserve(128 << 10)
	if n1 != readerChunk || n2 != readerChunk || w1 <= 0 || w2 <= w1 {
		t.Fatalf("reserves from an empty bucket = %d after %v, %d after %v; want a chunk each, the second later", n1, w1, n2, w2)
	}
	perChunk := time.Duration(float64(readerChunk) / readerRate * float64(time.Second))
	if d := w2 - w1; d < perChunk*9/10 || d > perChunk*11/10 {
		t.Errorf("the second reader waits %v after the first, want about a chunk's time at the rate (%v)", d, perChunk)
	}
	// What a read did not use comes back.
	b.refund(2 * readerChunk)
	if n, wait = b.reserve(10); n != 10 || wait != 0 {
		t.Errorf("after refunds, reserve(10) = %d, %v; want 10 at once", n, wait)
	}
}
