package crypt

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// denseBudget caps the transition table of the dense automaton, in entries
// (4 bytes each). Secrets whose table would be larger (some 10 KiB of PEM or
// kubeconfig) use the sparse automaton: the same states, a little slower.
const denseBudget = 1 << 18

// matcher is an Aho-Corasick automaton over the secrets. States are numbered
// so that those where a secret ends come last (index >= firstMatch); the root
// is 0. The automaton's state after some input is the longest tail of that
// input that is a prefix of a secret, and depth[state] is that tail's length.
type matcher struct {
	depth      []int32         // by state: length of the tail it stands for
	match      []int32         // by state: length of the longest secret ending here, 0 if none
	firstMatch uint32          // first state index where a secret ends
	prefix     []byte          // the first bytes all secrets share, if 2 or more
	pairs      [1 << 10]uint64 // bit b0|b1<<8: some secret begins with b0, b1

	// Dense form, nil next when over denseBudget: next[s*width+class[b]]
	// is (the index of the next state) * width, so the scan loop does one
	// load per byte and no multiplication.
	class [256]uint8
	width uint32
	next  []uint32

	// Sparse form, when next is nil: trie edges of state s are
	// edges[edgeLo[s]:edgeLo[s+1]], fail[s] the failure link.
	root   [256]uint32
	edgeLo []uint32
	edges  []edge
	fail   []uint32
}

type edge struct {
	b  byte
	to uint32
}

// newMatcher builds the automaton for the secrets of MinMaskLen bytes or
// more; it returns nil if there are none. budget caps the dense table.
func newMatcher(secrets [][]byte, budget int) *matcher {
	pats := usable(secrets)
	if len(pats) == 0 {
		return nil
	}
	t := buildTrie(pats)
	a := t.number()
	if pre := commonPrefix(pats); pre != "" {
		a.prefix = []byte(pre)
	}
	for _, p := range pats {
		x := uint16(p[0]) | uint16(p[1])<<8
		a.pairs[x>>6] |= 1 << (x & 63)
	}
	if !a.buildDense(t, pats, budget) {
		a.buildSparse(t)
	}
	return a
}

// usable returns the distinct secrets of MinMaskLen bytes or more, sorted.
func usable(secrets [][]byte) []string {
	var pats []string
	for _, s := range secrets {
		if len(s) >= MinMaskLen {
			pats = append(pats, string(s))
		}
	}
	slices.Sort(pats)
	return slices.Compact(pats)
}

// commonPrefix returns the first bytes, up to 8, that all secrets share, if
// they share 2 or more.
func commonPrefix(pats []string) string {
	n := min(len(pats[0]), 8)
	for _, p := range pats[1:] {
		n = min(n, len(p))
		for p[:n] != pats[0][:n] {
			n--
		}
	}
	if n < 2 {
		return ""
	}
	return pats[0][:n]
}

// trie is the automaton under construction, states in creation order.
type trie struct {
	kids  [][]edge
	fail  []uint32
	depth []int32
	match []int32
	bfs   []uint32 // states in breadth-first order, root first
	index []uint32 // creation order -> final state index
}

func buildTrie(pats []string) *trie {
	t := &trie{kids: [][]edge{nil}, depth: []int32{0}, match: []int32{0}}
	for _, p := range pats {
		s := uint32(0)
		for i := 0; i < len(p); i++ {
			s = t.child(s, p[i])
		}
		t.match[s] = int32(len(p))
	}
	t.link()
	return t
}

// child returns s's child for b, creating it if needed.
func (t *trie) child(s uint32, b byte) uint32 {
	if to, ok := kid(t.kids[s], b); ok {
		return to
	}
	to := uint32(len(t.kids))
	t.kids[s] = append(t.kids[s], edge{b, to})
	t.kids = append(t.kids, nil)
	t.depth = append(t.depth, t.depth[s]+1)
	t.match = append(t.match, 0)
	return to
}

func kid(es []edge, b byte) (uint32, bool) {
	for _, e := range es {
		if e.b == b {
			return e.to, true
		}
	}
	return 0, false
}

// link sets failure links breadth-first, and match to the longest secret
// that is a suffix of each state's tail.
func (t *trie) link() {
	t.fail = make([]uint32, len(t.kids))
	t.bfs = append(make([]uint32, 0, len(t.kids)), 0)
	for i := 0; i < len(t.bfs); i++ {
		s := t.bfs[i]
		for _, e := range t.kids[s] {
			if s != 0 {
				t.fail[e.to] = t.step(t.fail[s], e.b)
			}
			if t.match[e.to] == 0 {
				t.match[e.to] = t.match[t.fail[e.to]]
			}
			t.bfs = append(t.bfs, e.to)
		}
	}
}

// step is the automaton's transition, following failure links.
func (t *trie) step(s uint32, b byte) uint32 {
	for {
		if to, ok := kid(t.kids[s], b); ok {
			return to
		}
		if s == 0 {
			return 0
		}
		s = t.fail[s]
	}
}

// number gives states their final indexes: breadth-first, those where a
// secret ends last, and fills the per-state arrays.
func (t *trie) number() *matcher {
	n := len(t.kids)
	a := &matcher{depth: make([]int32, n), match: make([]int32, n)}
	t.index = make([]uint32, n)
	order := make([]uint32, 0, n)
	for pass := 0; pass < 2; pass++ {
		for _, s := range t.bfs {
			if (t.match[s] > 0) == (pass == 1) {
				if pass == 1 && a.firstMatch == 0 {
					a.firstMatch = uint32(len(order))
				}
				t.index[s] = uint32(len(order))
				order = append(order, s)
			}
		}
	}
	for i, s := range order {
		a.depth[i], a.match[i] = t.depth[s], t.match[s]
	}
	return a
}

func (a *matcher) buildSparse(t *trie) {
	n := len(t.kids)
	a.edgeLo = make([]uint32, n+1)
	a.fail = make([]uint32, n)
	byIndex := make([][]edge, n)
	for s, es := range t.kids {
		i := t.index[s]
		a.fail[i] = t.index[t.fail[s]]
		for _, e := range es {
			byIndex[i] = append(byIndex[i], edge{e.b, t.index[e.to]})
		}
	}
	for i, es := range byIndex {
		a.edgeLo[i+1] = a.edgeLo[i] + uint32(len(es))
		a.edges = append(a.edges, es...)
	}
	for b := range a.root {
		a.root[b], _ = kid(byIndex[0], byte(b))
	}
}

// buildDense fills the full transition table, one row per state and one
// column per class of bytes (the bytes of the secrets, and one class for
// every other byte, which always leads to the root). It builds nothing and
// returns false if the table would have more than budget entries.
func (a *matcher) buildDense(t *trie, pats []string, budget int) bool {
	var used [256]bool
	for _, p := range pats {
		for i := 0; i < len(p); i++ {
			used[p[i]] = true
		}
	}
	w := uint32(0)
	for b, u := range used {
		if u {
			a.class[b] = uint8(w)
			w++
		}
	}
	for b, u := range used {
		if !u {
			a.class[b] = uint8(w) // w < 256 here: some byte is unused
		}
	}
	if w < 256 {
		w++
	}
	if len(t.kids)*int(w) > budget {
		return false
	}
	a.width = w
	a.next = make([]uint32, len(t.kids)*int(w))
	for _, s := range t.bfs { // a state's failure target has its row already
		row := a.next[t.index[s]*w:][:w]
		if s != 0 {
			copy(row, a.next[t.index[t.fail[s]]*w:][:w])
		}
		for _, e := range t.kids[s] {
			row[a.class[e.b]] = t.index[e.to] * w
		}
	}
	return true
}

// stepSparse is the transition of the sparse form.
func (a *matcher) stepSparse(s uint32, b byte) uint32 {
	for s != 0 {
		for _, e := range a.edges[a.edgeLo[s]:a.edgeLo[s+1]] {
			if e.b == b {
				return e.to
			}
		}
		s = a.fail[s]
	}
	return a.root[b]
}

// index returns the state index of s, the automaton's position in a stream:
// a row offset in the dense form, the state index in the sparse one (0, the
// root, in both).
func (a *matcher) index(s uint32) uint32 {
	if a.next != nil {
		return s / a.width
	}
	return s
}

// scan runs the automaton over p from state s and calls found with the end
// (offset in p, exclusive) and length of the longest secret ending at each
// position where one ends. It returns the state after p.
func (a *matcher) scan(s uint32, p []byte, found func(end, n int)) uint32 {
	if a.next == nil {
		return a.scanSparse(s, p, found)
	}
	next, class, fm := a.next, &a.class, a.firstMatch*a.width
	for i := 0; i < len(p); i++ {
		if s == 0 {
			if i = a.skip(p, i); i == len(p) {
				break
			}
		}
		s = next[s+uint32(class[p[i]])]
		if s >= fm {
			found(i+1, int(a.match[s/a.width]))
		}
	}
	return s
}

func (a *matcher) scanSparse(s uint32, p []byte, found func(end, n int)) uint32 {
	for i := 0; i < len(p); i++ {
		if s == 0 {
			if i = a.skip(p, i); i == len(p) {
				break
			}
		}
		s = a.stepSparse(s, p[i])
		if s >= a.firstMatch {
			found(i+1, int(a.match[s]))
		}
	}
	return s
}

// skip returns the first position at or after i where, from the root, a
// secret could start: the automaton stays at the root over the bytes before
// it. That is the next occurrence of the secrets' common prefix if they
// share 2 bytes or more, else the next pair of bytes that begins a secret;
// the last bytes, too few to hold such a prefix, are left to the automaton.
//
// Skipping a position whose prefix does not match is safe although the
// automaton might have gone a few bytes down from it: no secret starts
// there, and the automaton, started afresh from the root further on, finds
// the same matches and, once that position's false start has failed, is in
// the same state. Every position that could still be live at the end of p is
// among the last bytes, which the automaton sees from a position it was
// right at.
func (a *matcher) skip(p []byte, i int) int {
	if a.prefix != nil {
		if j := bytes.Index(p[i:], a.prefix); j >= 0 {
			return i + j
		}
		return max(i, len(p)-len(a.prefix)+1)
	}
	for ; i+9 <= len(p); i += 8 { // 8 pairs at a time, without a branch
		w := binary.LittleEndian.Uint64(p[i:])
		if a.starts(uint16(w))|a.starts(uint16(w>>8))|a.starts(uint16(w>>16))|a.starts(uint16(w>>24))|
			a.starts(uint16(w>>32))|a.starts(uint16(w>>40))|a.starts(uint16(w>>48))|
			a.starts(uint16(w>>56)|uint16(p[i+8])<<8) != 0 {
			break
		}
	}
	for ; i+1 < len(p); i++ {
		if a.starts(uint16(p[i])|uint16(p[i+1])<<8) != 0 {
			return i
		}
	}
	return i
}

// starts returns 1 if some secret starts with the bytes x&0xff, x>>8.
func (a *matcher) starts(x uint16) uint64 {
	return a.pairs[x>>6] >> (x & 63) & 1
}
