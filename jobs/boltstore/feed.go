package boltstore

import (
	"context"
	"sync"
)

// feedBuffer bounds what one watcher may fall behind by: past it the
// watcher's channel is closed (it reads again and watches anew), so a
// watcher that stopped reading never holds up a commit or grows the daemon.
const feedBuffer = 1024

// feed is Store's change feed: each commit's changes are handed to every
// watcher after the commit, in-process.
type feed struct {
	mu     sync.Mutex
	subs   map[chan Change]func() bool // each watcher's stop of its AfterFunc
	closed bool
}

// watch adds a watcher until ctx ends or the feed closes.
func (f *feed) watch(ctx context.Context) <-chan Change {
	ch := make(chan Change, feedBuffer)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(ch)
		return ch
	}
	if f.subs == nil {
		f.subs = map[chan Change]func() bool{}
	}
	// No goroutine waits for ctx: AfterFunc runs drop once, when it ends.
	f.subs[ch] = context.AfterFunc(ctx, func() { f.drop(ch) })
	return ch
}

// drop ends one watcher (its context ended).
func (f *feed) drop(ch chan Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[ch]; ok {
		delete(f.subs, ch)
		close(ch)
	}
}

// publish hands changes to every watcher without waiting: a watcher whose
// buffer is full is dropped (its channel closed), never waited for.
func (f *feed) publish(changes []Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch, stop := range f.subs {
		for _, c := range changes {
			select {
			case ch <- c:
				continue
			default:
			}
			stop() // its context may still end: drop finds it gone
			delete(f.subs, ch)
			close(ch)
			break
		}
	}
}

// close ends every watcher; later watches get a closed channel.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch, stop := range f.subs {
		stop()
		close(ch)
	}
	f.subs = nil
}

// Watch returns the changes committed from now on: see Store.
func (s *Store) Watch(ctx context.Context) <-chan Change { return s.feed.watch(ctx) }
