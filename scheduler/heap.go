package scheduler

import "container/heap"

var _ heap.Interface = (*ticks)(nil)

// ticks is a min-heap of entries by next tick, then job id; it keeps each
// entry's index up to date. The Scheduler's mutex guards it.
type ticks []*entry

func (h ticks) Len() int { return len(h) }

func (h ticks) Less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].id < h[j].id
}

func (h ticks) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *ticks) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *ticks) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}

// top returns the entry with the earliest tick, nil if there is none.
func (h ticks) top() *entry {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}
