// Package chain parses config/chains, novem's pipeline grammar: steps bound
// to image references and the edges between them. It knows nothing of
// images, runs or the store: jobs resolves and runs what it returns.
package chain

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/jobfs/jobfs/jobs/domain"
)

// Chain is a parsed config/chains value: steps (a label bound to an image
// reference) and the edges between them (novem grammar, DESIGN.md 3).
//
//	report_builder                 a single image: one step
//	fetch <- data_fetcher          bind a label to an image
//	fetch -> transform -> render   edges, chainable
//	a, b -> c                      c waits for both (AND)
//	split -> .render               fan-out: one render per output file of split
//	# comment, blank lines
//
// OR dependencies (`|`) are reserved and refused.
type Chain struct {
	Steps []Step // in order of first appearance
}

// Step is one node of the pipeline.
type Step struct {
	Label  string
	Ref    string   // image reference as written
	Line   int      // where it was bound
	After  []string // labels it waits for
	FanOut bool     // one instance per output file of its single predecessor
}

// The patterns are compiled on first use: counted repetitions make them
// costly to compile, and the step init (this same binary) never uses them.
var labelRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$`) })

// chainErr is a parse error with its line.
func chainErr(line int, format string, args ...any) error {
	return domain.Errorf(domain.ErrInvalid, "config/chains: line %d: %s", line, fmt.Sprintf(format, args...))
}

// Parse parses a chains file. It checks the grammar and the graph
// (unbound or doubly bound labels, cycles, fan-out on a first step); images
// are resolved separately.
func Parse(src string) (Chain, error) {
	p := chainParser{bound: map[string]*Step{}, used: map[string]int{}, after: map[string]map[string]bool{}, fan: map[string]bool{}}
	for i, raw := range strings.Split(src, "\n") {
		line := raw
		if k := strings.IndexByte(line, '#'); k >= 0 {
			line = line[:k]
		}
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if err := p.statement(i+1, line); err != nil {
			return Chain{}, err
		}
	}
	return p.finish()
}

type chainParser struct {
	order []string                   // labels in order of binding
	bound map[string]*Step           // label -> step
	used  map[string]int             // label -> first line it is used on in an edge
	after map[string]map[string]bool // label -> predecessors
	fan   map[string]bool            // labels marked with a dot
	bare  []int                      // lines holding a bare image reference
	edges int                        // edge statements seen
	first int                        // line of the first statement
}

func (p *chainParser) statement(n int, line string) error {
	if p.first == 0 {
		p.first = n
	}
	switch {
	case strings.Contains(line, "|"):
		return chainErr(n, "OR dependencies (|) are reserved and not supported; use a, b -> c to wait for both")
	case strings.Contains(line, "<-"):
		return p.binding(n, line)
	case strings.Contains(line, "->"):
		return p.edge(n, line)
	}
	if !imageRefRE().MatchString(line) {
		return chainErr(n, "cannot read %s: expected `label <- image`, `a -> b` or a single image name", quote(line))
	}
	p.bare = append(p.bare, n)
	label := line
	if m := imageRefRE().FindStringSubmatch(line); m != nil {
		label = m[2]
	}
	p.order = append(p.order, label)
	p.bound[label] = &Step{Label: label, Ref: line, Line: n}
	return nil
}

func (p *chainParser) binding(n int, line string) error {
	label, ref, _ := strings.Cut(line, "<-")
	label, ref = strings.TrimSpace(label), strings.TrimSpace(ref)
	if !labelRE().MatchString(label) {
		return chainErr(n, "bad label %s: use letters, digits, _ and -", quote(label))
	}
	if !imageRefRE().MatchString(ref) {
		return chainErr(n, "bad image reference %s (name or @owner/name:label)", quote(ref))
	}
	if s, ok := p.bound[label]; ok {
		return chainErr(n, "label %q is bound twice (first on line %d)", label, s.Line)
	}
	p.order = append(p.order, label)
	p.bound[label] = &Step{Label: label, Ref: ref, Line: n}
	return nil
}

func (p *chainParser) edge(n int, line string) error {
	p.edges++
	groups := strings.Split(line, "->")
	var prev []string
	for gi, g := range groups {
		var cur []string
		for _, node := range strings.Split(g, ",") {
			node = strings.TrimSpace(node)
			fan := strings.HasPrefix(node, ".")
			label := strings.TrimPrefix(node, ".")
			if !labelRE().MatchString(label) {
				return chainErr(n, "bad step %s in %s", quote(node), quote(line))
			}
			if fan {
				if gi == 0 {
					return chainErr(n, "fan-out .%s needs a step before it: a first step gets the run's input", label)
				}
				p.fan[label] = true
			}
			if _, ok := p.used[label]; !ok {
				p.used[label] = n
			}
			if p.after[label] == nil {
				p.after[label] = map[string]bool{}
			}
			for _, q := range prev {
				p.after[label][q] = true
			}
			cur = append(cur, label)
		}
		prev = cur
	}
	return nil
}

func (p *chainParser) finish() (Chain, error) {
	if len(p.order) == 0 && p.edges == 0 {
		return Chain{}, domain.MayComplete(domain.Errorf(domain.ErrInvalid, "config/chains is empty: write an image name, e.g. report_builder"))
	}
	if len(p.bare) > 0 && (len(p.order) > 1 || p.edges > 0) {
		return Chain{}, chainErr(p.bare[0], "a bare image name must be alone in the file; bind it to a label instead: step <- image")
	}
	for _, label := range slices.Sorted(maps.Keys(p.used)) {
		if p.bound[label] == nil {
			return Chain{}, domain.MayComplete(chainErr(p.used[label], "unbound label %q: bind it first, e.g. %s <- image", label, label))
		}
	}
	var c Chain
	for _, label := range p.order {
		s := p.bound[label]
		s.After = slices.Sorted(maps.Keys(p.after[label]))
		s.FanOut = p.fan[label]
		if s.FanOut && len(s.After) != 1 {
			return Chain{}, chainErr(p.used[label], "fan-out .%s needs exactly one step before it, has %d", label, len(s.After))
		}
		c.Steps = append(c.Steps, *s)
	}
	if cyc := findCycle(c); cyc != nil {
		return Chain{}, chainErr(p.used[cyc[0]], "cycle: %s", strings.Join(cyc, " -> "))
	}
	return c, nil
}

// findCycle returns a cycle of labels (first label repeated at the end), or nil.
func findCycle(c Chain) []string {
	after := map[string][]string{}
	for _, s := range c.Steps {
		after[s.Label] = s.After
	}
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(string) []string
	visit = func(l string) []string {
		state[l] = active
		stack = append(stack, l)
		for _, q := range after[l] {
			switch state[q] {
			case active:
				i := len(stack) - 1
				for stack[i] != q {
					i--
				}
				cyc := append([]string(nil), stack[i:]...)
				// stack holds successors after predecessors reversed: print in edge order.
				for a, b := 0, len(cyc)-1; a < b; a, b = a+1, b-1 {
					cyc[a], cyc[b] = cyc[b], cyc[a]
				}
				return append(cyc, cyc[0])
			case unseen:
				if c := visit(q); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[l] = done
		return nil
	}
	for _, s := range c.Steps {
		if state[s.Label] == unseen {
			if cyc := visit(s.Label); cyc != nil {
				return cyc
			}
		}
	}
	return nil
}

func quote(s string) string {
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// imageRefRE matches an image reference: [@owner/]name[:label].
var imageRefRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:@([a-z_][a-z0-9_.-]*)/)?([A-Za-z0-9][A-Za-z0-9._-]{0,63})(?::([A-Za-z0-9._/-]{1,128}))?$`)
})

// SplitRef splits an image reference, [@owner/]name[:label], into its
// parts; ok is false when ref is not one.
func SplitRef(ref string) (owner, name, label string, ok bool) {
	sub := imageRefRE().FindStringSubmatch(ref)
	if sub == nil {
		return "", "", "", false
	}
	return sub[1], sub[2], sub[3], true
}
