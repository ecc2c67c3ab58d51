package chain

import (
	"errors"
	"strings"
	"testing"

	"github.com/jobfs/jobfs/jobs/domain"
)

func TestParseChainAccepts(t *testing.T) {
	type step struct {
		label, after string
		fan          bool
	}
	cases := []struct {
		name, src string
		want      []step
	}{
		{"bare image", "report_builder\n", []step{{"report_builder", "", false}}},
		{"canonical ref", "@alice/report_builder:v2\n", []step{{"report_builder", "", false}}},
		{"three steps", "# daily report\nfetch     <- data_fetcher\ntransform <- transformer\nrender    <- chart_builder\n\nfetch -> transform -> render\n",
			[]step{{"fetch", "", false}, {"transform", "fetch", false}, {"render", "transform", false}}},
		{"fan-out", "split <- splitter\nrender <- chart\nsplit -> .render\n", []step{{"split", "", false}, {"render", "split", true}}},
		{"fan-in", "a <- x\nb <- y\nc <- z\na, b -> c\n", []step{{"a", "", false}, {"b", "", false}, {"c", "a,b", false}}},
		{"same image twice", "one <- img\ntwo <- img\none -> two\n", []step{{"one", "", false}, {"two", "one", false}}},
		{"bindings only", "a <- x\nb <- y\n", []step{{"a", "", false}, {"b", "", false}}},
		{"edges over lines", "a <- x\nb <- y\nc <- z\na -> b\nb -> c # comment\n", []step{{"a", "", false}, {"b", "a", false}, {"c", "b", false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.src)
			if err != nil {
				t.Fatalf("ParseChain: %v", err)
			}
			if len(c.Steps) != len(tc.want) {
				t.Fatalf("got %d steps, want %d: %+v", len(c.Steps), len(tc.want), c.Steps)
			}
			for i, w := range tc.want {
				s := c.Steps[i]
				if s.Label != w.label || strings.Join(s.After, ",") != w.after || s.FanOut != w.fan {
					t.Errorf("step %d = %s after %v fan %v, want %+v", i, s.Label, s.After, s.FanOut, w)
				}
			}
		})
	}
}

func TestParseChainRefuses(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"empty", "", "empty"},
		{"only comments", "# nothing\n\n", "empty"},
		{"unbound label", "fetch <- f\nfetch -> render\n", `line 2: unbound label "render"`},
		{"bound twice", "a <- x\na <- y\n", `line 2: label "a" is bound twice (first on line 1)`},
		{"cycle", "a <- x\nb <- y\na -> b\nb -> a\n", "cycle"},
		{"self loop", "a <- x\na -> a\n", "cycle"},
		{"fan-out first", "a <- x\nb <- y\n.a -> b\n", "fan-out .a needs a step before it"},
		{"fan-out after two", "a <- x\nb <- y\nc <- z\na, b -> .c\n", "fan-out .c needs exactly one step before it"},
		{"OR reserved", "a <- x\nb <- y\nc <- z\na | b -> c\n", "OR dependencies"},
		{"garbage", "this is not a chain\n", "line 1: cannot read"},
		{"bad image", "a <- ../etc\n", "line 1: bad image reference"},
		{"bad label", "a b <- x\n", "line 1: bad label"},
		{"bare with edges", "img\na <- x\n", "a bare image name must be alone"},
		{"dangling arrow", "a <- x\na ->\n", "line 2: bad step"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.src)
			if err == nil {
				t.Fatalf("Parse(%q) accepted it", tc.src)
			}
			if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want domain.ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

// FuzzParseChain: the parser never panics, and what it accepts is a DAG
// whose edges name bound steps, fan-outs have one predecessor and first
// steps do not fan out.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"report_builder", "a <- x\nb <- y\na -> b", "a <- x\nb <- y\na -> .b",
		"a <- x\nb <- y\nc <- z\na, b -> c", "a -> b -> a", "# c\n\n", "@o/n:v1", "a | b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse(src)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("error not domain.ErrInvalid: %v", err)
			}
			return
		}
		bound := map[string]bool{}
		for _, s := range c.Steps {
			if bound[s.Label] {
				t.Fatalf("label %q twice", s.Label)
			}
			bound[s.Label] = true
		}
		for _, s := range c.Steps {
			for _, a := range s.After {
				if !bound[a] {
					t.Fatalf("step %q after unbound %q", s.Label, a)
				}
			}
			if s.FanOut && len(s.After) != 1 {
				t.Fatalf("fan-out %q with %d predecessors", s.Label, len(s.After))
			}
		}
		if findCycle(c) != nil {
			t.Fatalf("accepted a cycle: %q", src)
		}
	})
}
