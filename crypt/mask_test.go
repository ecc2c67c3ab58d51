package crypt

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveMask is the reference: it masks the whole stream at once. Every
// occurrence of every secret of MinMaskLen bytes or more is a span; spans that
// overlap are merged; each merged span is written "***".
func naiveMask(data []byte, secrets [][]byte) []byte {
	var out []byte
	regionStart, regionEnd := -1, -1
	closeRegion := func() {
		if regionStart >= 0 {
			out = append(out, "***"...)
		}
	}
	last := 0 // bytes of data written or masked
	for i := range data {
		end := 0
		for _, s := range secrets {
			if len(s) >= MinMaskLen && bytes.HasPrefix(data[i:], s) {
				end = max(end, i+len(s))
			}
		}
		switch {
		case end == 0:
		case i < regionEnd:
			regionEnd = max(regionEnd, end)
		default:
			closeRegion()
			out = append(out, data[max(last, regionEnd):i]...)
			regionStart, regionEnd, last = i, end, i
		}
	}
	closeRegion()
	return append(out, data[max(last, regionEnd, 0):]...)
}

// recorder keeps every Write it is given.
type recorder struct {
	bytes.Buffer
	writes int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes++
	return r.Buffer.Write(p)
}

// maskWrites writes each of writes to a new Masker (dense or sparse form),
// flushes, and returns the output.
func maskWrites(t testing.TB, secrets []string, writes []string, budget int) string {
	var rec recorder
	m := newMasker(&rec, bs(secrets...), budget)
	for _, w := range writes {
		if n, err := m.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w, n, err)
		}
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	return rec.String()
}

func bs(ss ...string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, []byte(s))
	}
	return out
}

// forms runs f for the dense and the sparse automaton.
func forms(t *testing.T, f func(t *testing.T, budget int)) {
	t.Run("dense", func(t *testing.T) { f(t, denseBudget) })
	t.Run("sparse", func(t *testing.T) { f(t, 0) })
}

func TestMasker(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		writes  []string
		want    string
	}{
		{"one write", []string{"hunter2!"}, []string{"pw=hunter2! ok"}, "pw=*** ok"},
		{"split in two", []string{"hunter2!"}, []string{"pw=hunt", "er2! ok"}, "pw=*** ok"},
		{"split in three", []string{"hunter2!"}, []string{"pw=hu", "nter", "2! ok"}, "pw=*** ok"},
		{"byte by byte", []string{"hunter2!"}, strings.Split("pw=hunter2! ok", ""), "pw=*** ok"},
		{"start of stream", []string{"hunter2!"}, []string{"hunter2! ok"}, "*** ok"},
		{"end of stream", []string{"hunter2!"}, []string{"pw=hunter2!"}, "pw=***"},
		{"whole stream", []string{"hunter2!"}, []string{"hunter2!"}, "***"},
		{"repeated", []string{"hunter2!"}, []string{"hunter2! and hunter2!, hunter2!"}, "*** and ***, ***"},
		{"adjacent", []string{"hunter2!"}, []string{"hunter2!hunter2!"}, "******"},
		{"adjacent different", []string{"abcd", "efgh"}, []string{"xabcdefghx"}, "x******x"},
		{"overlapping", []string{"abcdef", "cdefgh"}, []string{"xabcdefghx"}, "x***x"},
		{"overlapping, first only", []string{"abcdef", "cdefgh"}, []string{"xabcdefgx"}, "x***gx"},
		{"overlapping, second only", []string{"abcdef", "cdefgh"}, []string{"xbcdefghx"}, "xb***x"},
		{"overlapping chain", []string{"abcd", "cdef", "efgh"}, []string{"abcdefgh"}, "***"},
		{"overlapping self", []string{"abab"}, []string{"xababababx"}, "x***x"},
		{"nested, long", []string{"secret", "secret123"}, []string{"a secret123 b"}, "a *** b"},
		{"nested, short", []string{"secret", "secret123"}, []string{"a secret12 b"}, "a ***12 b"},
		{"nested inside", []string{"cret", "secret123"}, []string{"a secret123 secrets"}, "a *** se***s"},
		{"nested, split", []string{"secret", "secret123"}, []string{"a secr", "et1", "23 b"}, "a *** b"},
		{"long one starts before short one", []string{"cdxyzw", "abcd"}, []string{"abcdxyzw!"}, "***!"},
		{"short secret not masked", []string{"abc"}, []string{"abc abcd"}, "abc abcd"},
		{"only short secrets", []string{"a", "ab", "abc", ""}, []string{"abc abcd"}, "abc abcd"},
		{"short among long", []string{"abc", "abcdef"}, []string{"abc abcdef"}, "abc ***"},
		{"prefix only, flushed", []string{"hunter2!"}, []string{"pw=hunter2"}, "pw=hunter2"},
		{"prefix then other", []string{"hunter2!"}, []string{"hunt", "hunter", "hunter2!"}, "hunthunter***"},
		{"prefix inside a prefix", []string{"aaab"}, []string{"aa", "aaaab"}, "aaa***"},
		{"binary with NULs", []string{"\x00\x01\x00\xff"}, []string{"\x00\x00\x01", "\x00\xff\x00\x00"}, "\x00***\x00\x00"},
		{"secret of NULs", []string{"\x00\x00\x00\x00"}, []string{"\x00\x00\x00", "\x00\x00x\x00\x00\x00\x00"}, "***x***"},
		{"duplicates", []string{"hunter2!", "hunter2!"}, []string{"hunter2!"}, "***"},
		{"empty writes", []string{"hunter2!"}, []string{"", "hunter2!", ""}, "***"},
		{"unicode", []string{"pässwörd"}, []string{"x pässwörd y"}, "x *** y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forms(t, func(t *testing.T, budget int) {
				if got := maskWrites(t, tt.secrets, tt.writes, budget); got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
				if ref := string(naiveMask([]byte(strings.Join(tt.writes, "")), bs(tt.secrets...))); ref != tt.want {
					t.Errorf("reference gives %q, want %q", ref, tt.want)
				}
			})
		})
	}
}

// TestMaskerEverySplit writes samples in two and in three writes, cut at
// every pair of points.
func TestMaskerEverySplit(t *testing.T) {
	secrets := []string{"secret", "secret123", "abcdef", "cdefgh", "tok\x00en"}
	samples := []string{
		"secret",
		"a secret123 b abcdefgh c",
		"secretsecret123secre abcdef",
		"x tok\x00en\x00cdefghsecret",
	}
	forms(t, func(t *testing.T, budget int) {
		for _, s := range samples {
			want := string(naiveMask([]byte(s), bs(secrets...)))
			for i := 0; i <= len(s); i++ {
				if got := maskWrites(t, secrets, []string{s[:i], s[i:]}, budget); got != want {
					t.Fatalf("%q cut at %d: got %q, want %q", s, i, got, want)
				}
				for j := i; j <= len(s); j++ {
					if got := maskWrites(t, secrets, []string{s[:i], s[i:j], s[j:]}, budget); got != want {
						t.Fatalf("%q cut at %d and %d: got %q, want %q", s, i, j, got, want)
					}
				}
			}
		}
	})
}

// TestMaskerHoldsBackOnlyAPrefix checks what is written after each Write:
// all but the longest tail that could start a secret.
func TestMaskerHoldsBackOnlyAPrefix(t *testing.T) {
	steps := []struct{ write, out string }{
		{"abc ", "abc "},
		{"secr", "abc "},             // could be "secret"
		{"e", "abc "},                // still could
		{"x", "abc secrex"},          // disproved: written at once
		{" ss", "abc secrex s"},      // only the last "s" could start a secret
		{"ecret", "abc secrex s***"}, // a complete secret that cannot grow: masked at once
		{"\nsec", "abc secrex s***\n"},
		{"ret1", "abc secrex s***\n***"}, // "secret" is masked now, it may grow into "secret123"
		{"2", "abc secrex s***\n***"},
		{"3 done", "abc secrex s***\n*** done"},
		{" se", "abc secrex s***\n*** done "},
	}
	forms(t, func(t *testing.T, budget int) {
		var rec recorder
		m := newMasker(&rec, bs("secret", "secret123"), budget)
		for _, st := range steps {
			m.Write([]byte(st.write))
			if rec.String() != st.out {
				t.Fatalf("after %q: written %q, want %q", st.write, rec.String(), st.out)
			}
		}
		m.Flush()
		if want := steps[len(steps)-1].out + "se"; rec.String() != want {
			t.Fatalf("after Flush: written %q, want %q", rec.String(), want)
		}
	})
}

func TestMaskerOneWritePerWrite(t *testing.T) {
	var rec recorder
	m := NewMasker(&rec, bs("secret"))
	m.Write([]byte("a secret b secret c secr"))
	m.Write([]byte("et d secret"))
	if rec.writes != 2 || rec.String() != "a *** b *** c *** d ***" {
		t.Errorf("%d writes of %q", rec.writes, rec.String())
	}
}

func TestMaskerFlushEndsStream(t *testing.T) {
	var rec recorder
	m := NewMasker(&rec, bs("secret"))
	m.Write([]byte("a sec"))
	m.Flush()
	m.Write([]byte("ret b secret"))
	m.Flush()
	m.Flush()
	if want := "a secret b ***"; rec.String() != want {
		t.Errorf("got %q, want %q", rec.String(), want)
	}
}

func TestMaskerPassThrough(t *testing.T) {
	for _, secrets := range [][][]byte{nil, {}, bs("abc", "", "x")} {
		var rec recorder
		m := NewMasker(&rec, secrets)
		if m.a != nil {
			t.Fatalf("secrets %q: built an automaton", secrets)
		}
		m.Write([]byte("abc "))
		m.Write([]byte("abcd"))
		m.Flush()
		if rec.writes != 2 || rec.String() != "abc abcd" {
			t.Errorf("secrets %q: %d writes of %q", secrets, rec.writes, rec.String())
		}
	}
}

type failWriter struct{ err error }

func (f failWriter) Write(p []byte) (int, error) { return 0, f.err }

func TestMaskerWriteErrorSticks(t *testing.T) {
	boom := errors.New("disk full")
	m := NewMasker(failWriter{boom}, bs("secret"))
	if n, err := m.Write([]byte("hello")); n != 0 || err != boom {
		t.Errorf("Write = %d, %v; want 0, %v", n, err, boom)
	}
	if n, err := m.Write([]byte("again")); n != 0 || err != boom {
		t.Errorf("Write after error = %d, %v", n, err)
	}
	if err := m.Flush(); err != boom {
		t.Errorf("Flush after error = %v", err)
	}
}

func TestMaskerKeepsNoReferenceToSecrets(t *testing.T) {
	secret := []byte("secret")
	var rec recorder
	m := NewMasker(&rec, [][]byte{secret})
	copy(secret, "xxxxxx")
	m.Write([]byte("a secret"))
	m.Flush()
	if rec.String() != "a ***" {
		t.Errorf("got %q", rec.String())
	}
}

func TestMatcherForms(t *testing.T) {
	small := newMatcher(bs("hunter2!", "secret"), denseBudget)
	if small.next == nil {
		t.Error("small secrets: no dense table")
	}
	big := newMatcher([][]byte{randomBytes(rand.New(rand.NewPCG(1, 2)), 20000)}, denseBudget)
	if big.next != nil {
		t.Errorf("a 20000-byte secret: dense table of %d entries", len(big.next))
	}
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestMaskerRandom is FuzzMasker's check over a fixed set of random cases,
// so that a plain go test covers it: few letters, short secrets, data that
// holds pieces of them.
func TestMaskerRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for i := range 3000 {
		spec := []byte{byte(r.IntN(4))}
		var pieces [][]byte
		for range 1 + r.IntN(6) {
			s := randomBytes(r, r.IntN(12))
			spec = append(append(spec, byte(len(s))), s...)
			pieces = append(pieces, s)
		}
		var data []byte
		for len(data) < r.IntN(200) {
			if p := pieces[r.IntN(len(pieces))]; r.IntN(2) == 0 {
				data = append(data, p[:r.IntN(len(p)+1)]...)
			} else {
				data = append(data, randomBytes(r, r.IntN(5))...)
			}
		}
		cuts := randomBytes(r, r.IntN(20))
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkMasker(t, spec, data, cuts) })
	}
}
