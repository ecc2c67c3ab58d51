package crypt

import (
	"bytes"
	"testing"
)

// FuzzMasker compares the Masker, dense and sparse, with naiveMask over
// random secrets, data and cut points (see fuzzCase).
func FuzzMasker(f *testing.F) {
	f.Add([]byte("\x00\x04abab\x05aabab\x02ab"), []byte("aababbababbbabaa"), []byte{3, 1})
	f.Add([]byte("\x80\x06secret\x09secret123\x04cret"), []byte("a secret123 secrets"), []byte{2, 5, 1})
	f.Add([]byte("\x81\x04\x00\x00\x00\x00\x04\x00\xff\x00\x01"), []byte("\x00\x00\x00\x00\x00\xff\x00\x01"), []byte{1})
	f.Add([]byte("\x83\x06abcdef\x06cdefgh"), []byte("abcdefghabcdefg"), []byte{7, 0, 9})
	f.Fuzz(checkMasker)
}

// checkMasker derives a case from the fuzzer's bytes and checks it.
func checkMasker(t *testing.T, spec, data, cuts []byte) {
	secrets, data := fuzzCase(spec, data[:min(len(data), 256)]) // the checks are quadratic
	want := naiveMask(data, secrets)
	for _, budget := range []int{denseBudget, 0} {
		var out bytes.Buffer
		m := newMasker(&out, secrets, budget)
		for i, rest := 0, data; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = min(n, int(cuts[i%len(cuts)])%24)
			}
			if n == 0 { // an empty Write, then one byte
				if got, err := m.Write(rest[:0]); got != 0 || err != nil {
					t.Fatalf("empty Write = %d, %v", got, err)
				}
				n = 1
			}
			if got, err := m.Write(rest[:n]); got != n || err != nil {
				t.Fatalf("Write of %d bytes = %d, %v", n, got, err)
			}
			rest = rest[n:]
			checkLive(t, out.Bytes(), data[:len(data)-len(rest)], want, secrets)
		}
		m.Flush()
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("budget %d, secrets %q, data %q, cuts %v:\ngot  %q\nwant %q", budget, secrets, data, cuts, out.Bytes(), want)
		}
	}
}

// checkLive checks what was written after the input seen: a prefix of the
// final output; and all of it when no tail of seen could start a secret.
func checkLive(t *testing.T, written, seen, want []byte, secrets [][]byte) {
	t.Helper()
	if !bytes.HasPrefix(want, written) {
		t.Fatalf("after %q: wrote %q, not a prefix of %q", seen, written, want)
	}
	for i := range seen {
		for _, s := range secrets {
			if len(s) >= MinMaskLen && bytes.HasPrefix(s, seen[i:]) {
				return
			}
		}
	}
	if now := naiveMask(seen, secrets); !bytes.Equal(written, now) {
		t.Fatalf("after %q: wrote %q, want %q at once", seen, written, now)
	}
}

// fuzzCase turns fuzzer bytes into secrets and data. spec[0] picks the
// alphabet: below 0x80, data and secrets are mapped to 2 to 5 letters, so
// matches and overlaps are frequent; from 0x80, bytes are kept as they are.
// The rest of spec is up to 8 secrets, each a length byte (taken mod 12)
// followed by that many bytes.
func fuzzCase(spec, data []byte) ([][]byte, []byte) {
	if len(spec) == 0 {
		return nil, data
	}
	mapb := func(b byte) byte { return b }
	if spec[0] < 0x80 {
		k := 2 + spec[0]%4
		mapb = func(b byte) byte { return 'a' + b%k }
	}
	var secrets [][]byte
	for rest := spec[1:]; len(rest) > 0 && len(secrets) < 8; {
		n := min(int(rest[0])%12, len(rest)-1)
		secrets = append(secrets, mapAll(rest[1:1+n], mapb))
		rest = rest[1+n:]
	}
	return secrets, mapAll(data, mapb)
}

func mapAll(b []byte, f func(byte) byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = f(c)
	}
	return out
}
