package jobs

import "testing"

func TestReaderBudget(t *testing.T) {
	b := newReaderBudget()
	n, wait := b.take(4 << 20)
	if n != readerBurst || wait != 0 {
		t.Fatalf("first take = %d, %v; want the burst (%d) at once", n, wait, readerBurst)
	}
	n, wait = b.take(128 << 10)
	if n != 0 || wait <= 0 {
		t.Fatalf("take from an empty bucket = %d, %v; want 0 and a wait", n, wait)
	}
	b.refund(100 << 10)
	if n, _ = b.take(128 << 10); n < readerChunk {
		t.Fatalf("after a refund of 100 KiB take = %d, want at least a chunk (%d)", n, readerChunk)
	}
	if n, wait = b.take(10); n != 0 && wait == 0 {
		t.Logf("a small read is granted as soon as its bytes are: %d", n)
	}
}
