package crypt

import "io"

// MinMaskLen is the length of the shortest secret a Masker masks. Shorter
// values would hit ordinary words and numbers everywhere in a log.
const MinMaskLen = 4

var mask = []byte("***")

// Masker wraps a writer and writes "***" in place of every occurrence of a
// secret of MinMaskLen bytes or more, across Write boundaries. It holds back
// only the tail of what it was given that could still be part of a secret,
// and writes it as soon as it cannot; Flush writes the rest at the end of the
// stream. Each Write makes at most one Write to the wrapped writer.
//
// Where occurrences overlap, the longest match at a position wins, and a match
// that starts inside it and runs past its end extends it: "abcdefgh" with the
// secrets "abcdef" and "cdefgh" is written "***". Occurrences that only touch
// are masked one by one.
//
// Cost: with no secret to mask, Write is a call to the wrapped writer. With
// some, the input is scanned once: a prefilter skips to the next place where
// the first two bytes of a secret occur (the secrets' common prefix with
// bytes.Index when they share one), and an Aho-Corasick automaton (a dense
// table, one load per byte) takes it from there; output is copied once.
//
// An error from the wrapped writer is returned by that Write and every later
// call (what was held back is lost, as with bufio.Writer).
//
// A Masker is used by one goroutine at a time.
type Masker struct {
	w io.Writer
	a *matcher // nil: no secret to mask, Write passes p through

	// Positions count bytes since the stream began.
	s       uint32 // automaton state after pos bytes
	pos     int64  // bytes given to Write
	done    int64  // bytes decided: written, or dropped into a mask
	held    []byte // the bytes [done, pos)
	maskEnd int64  // end of the last mask written; may still grow
	spans   []span // matches not yet masked: sorted, apart, all after maskEnd
	out     []byte // output of one Write
	err     error
}

// span is a match, [start, end) in stream positions.
type span struct{ start, end int64 }

// NewMasker returns a Masker writing to w that masks secrets of MinMaskLen
// bytes or more; it keeps no reference to secrets. With none, it passes
// every Write straight to w.
func NewMasker(w io.Writer, secrets [][]byte) *Masker {
	return newMasker(w, secrets, denseBudget)
}

func newMasker(w io.Writer, secrets [][]byte, budget int) *Masker {
	return &Masker{w: w, a: newMatcher(secrets, budget)}
}

// Write masks p and writes what can no longer be part of a secret. It
// returns len(p) unless the wrapped writer fails.
func (m *Masker) Write(p []byte) (int, error) {
	if m.a == nil {
		return m.w.Write(p)
	}
	if m.err != nil {
		return 0, m.err
	}
	start := m.pos
	m.s = m.a.scan(m.s, p, func(end, n int) { m.found(start+int64(end), int64(n)) })
	m.pos += int64(len(p))
	safe := m.pos - int64(m.a.depth[m.a.index(m.s)])
	if len(m.held) == 0 && len(m.spans) == 0 && m.maskEnd <= start {
		return m.writeDirect(p, int(max(safe-start, 0)))
	}
	if err := m.emit(p, safe); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeDirect is Write when nothing is held or pending: p[:n] goes out as it
// is and the rest is held.
func (m *Masker) writeDirect(p []byte, n int) (int, error) {
	if n > 0 {
		if _, err := m.w.Write(p[:n]); err != nil {
			m.err = err
			return 0, err
		}
	}
	m.done += int64(n)
	m.held = append(m.held, p[n:]...)
	return len(p), nil
}

// Flush writes everything held back, as it is: it ends the stream. A secret
// that a Flush cuts in two is not masked; a Write after Flush starts afresh.
func (m *Masker) Flush() error {
	if m.a == nil || m.err != nil {
		return m.err
	}
	m.s = 0
	return m.emit(nil, m.pos)
}

// found records a match [end-n, end). Matches arrive in order of their end,
// each the longest ending there. One that overlaps the last mask extends
// it over every pending span; otherwise it absorbs the pending spans it
// overlaps.
func (m *Masker) found(end, n int64) {
	start := end - n
	if start < m.maskEnd {
		m.maskEnd, m.spans = end, m.spans[:0]
		return
	}
	for len(m.spans) > 0 && m.spans[len(m.spans)-1].end > start {
		start = min(start, m.spans[len(m.spans)-1].start)
		m.spans = m.spans[:len(m.spans)-1]
	}
	m.spans = append(m.spans, span{start, end})
}

// emit decides every byte before safe (no match can start before it any
// more): it writes plain bytes, a mask for each span starting at or before
// safe, and drops the bytes under a mask; then it holds the rest. The
// bytes not yet decided are m.held followed by p.
func (m *Masker) emit(p []byte, safe int64) error {
	out, cur, k := m.out[:0], m.done, 0
	for {
		if cur < m.maskEnd {
			cur = m.maskEnd
		} else if k < len(m.spans) && m.spans[k].start <= safe {
			sp := m.spans[k]
			k++
			out = append(m.appendStream(out, p, cur, sp.start), mask...)
			cur, m.maskEnd = sp.start, sp.end
		} else if cur < safe {
			out = m.appendStream(out, p, cur, safe)
			cur = safe
		} else {
			break
		}
	}
	m.hold(p, cur)
	m.spans = m.spans[:copy(m.spans, m.spans[k:])]
	m.out = out
	if len(out) == 0 {
		return nil
	}
	if _, err := m.w.Write(out); err != nil {
		m.err = err
		return err
	}
	return nil
}

// appendStream appends the bytes [from, to) to out, from m.held (which
// starts at m.done) and p (which follows it).
func (m *Masker) appendStream(out, p []byte, from, to int64) []byte {
	pStart := m.done + int64(len(m.held))
	if from < pStart {
		out = append(out, m.held[from-m.done:min(to, pStart)-m.done]...)
	}
	if to > pStart {
		out = append(out, p[max(from, pStart)-pStart:to-pStart]...)
	}
	return out
}

// hold keeps the bytes from done on, of m.held and p.
func (m *Masker) hold(p []byte, done int64) {
	pStart := m.done + int64(len(m.held))
	if done < pStart {
		m.held = append(m.held[:copy(m.held, m.held[done-m.done:])], p...)
	} else {
		m.held = append(m.held[:0], p[done-pStart:]...)
	}
	m.done = done
}
