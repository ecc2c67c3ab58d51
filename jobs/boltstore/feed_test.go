package boltstore

import (
	"context"
	"testing"
)

// TestFeedDropsLaggingWatcher: a watcher that stops reading is closed once
// it is feedBuffer changes behind, and the others go on receiving.
func TestFeedDropsLaggingWatcher(t *testing.T) {
	var f feed
	ctx := context.Background()
	lagging, reading := f.watch(ctx), f.watch(ctx)
	for i := range feedBuffer + 1 {
		f.publish([]Change{{Job: "j", Run: uint64(i + 1)}})
		if c := <-reading; c.Run != uint64(i+1) {
			t.Fatalf("reading watcher got %+v, want run %d", c, i+1)
		}
	}
	n := 0
	for range lagging {
		n++
	}
	if n != feedBuffer {
		t.Errorf("lagging watcher got %d changes before its close, want %d", n, feedBuffer)
	}
	f.close()
	if _, open := <-reading; open {
		t.Error("watcher open after the feed closed")
	}
	if _, open := <-f.watch(ctx); open {
		t.Error("watch of a closed feed is open")
	}
}
