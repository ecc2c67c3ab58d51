package crypt

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func newTestSealer(t *testing.T, seed byte) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{seed}, MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte key", n)
		}
	}
}

func TestSealRoundTrip(t *testing.T) {
	s := newTestSealer(t, 1)
	for _, plain := range [][]byte{{}, []byte("x"), []byte("hunter2-password"), bytes.Repeat([]byte{0, 0xff}, 5000)} {
		sealed, err := s.Seal("j1", "chains", "TOKEN", plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != len(plain)+sealedOverhead {
			t.Errorf("sealed %d bytes into %d, want %d", len(plain), len(sealed), len(plain)+sealedOverhead)
		}
		if len(plain) >= MinMaskLen && bytes.Contains(sealed, plain) {
			t.Errorf("sealed value contains the plaintext")
		}
		got, err := s.Open("j1", "chains", "TOKEN", sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("Open = %q, %v; want %q", got, err, plain)
		}
	}
}

func TestSealNonceDiffers(t *testing.T) {
	s := newTestSealer(t, 1)
	a, _ := s.Seal("j1", "chains", "TOKEN", []byte("same value"))
	b, _ := s.Seal("j1", "chains", "TOKEN", []byte("same value"))
	if bytes.Equal(a, b) || bytes.Equal(a[:24], b[:24]) {
		t.Errorf("two seals of the same value share a nonce:\n%x\n%x", a, b)
	}
}

func TestOpenRefuses(t *testing.T) {
	s := newTestSealer(t, 1)
	sealed, err := s.Seal("j1", "chains", "TOKEN", []byte("hunter2-password"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                  string
		s                     *Sealer
		job, runtime, varName string
		sealed                []byte
	}{
		{"other job", s, "j2", "chains", "TOKEN", sealed},
		{"other runtime", s, "j1", "script", "TOKEN", sealed},
		{"other name", s, "j1", "chains", "TOKEN2", sealed},
		{"other master key", newTestSealer(t, 2), "j1", "chains", "TOKEN", sealed},
		{"job and runtime run together", s, "j1c", "hains", "TOKEN", sealed},
		{"empty", s, "j1", "chains", "TOKEN", nil},
		{"nonce only", s, "j1", "chains", "TOKEN", sealed[:24]},
		{"one byte short of a tag", s, "j1", "chains", "TOKEN", sealed[:sealedOverhead-1]},
		{"truncated", s, "j1", "chains", "TOKEN", sealed[:len(sealed)-1]},
		{"extended", s, "j1", "chains", "TOKEN", append(bytes.Clone(sealed), 0)},
	}
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			flipped := bytes.Clone(sealed)
			flipped[i] ^= bit
			tests = append(tests, struct {
				name                  string
				s                     *Sealer
				job, runtime, varName string
				sealed                []byte
			}{"flipped byte", s, "j1", "chains", "TOKEN", flipped})
		}
	}
	for _, tt := range tests {
		got, err := tt.s.Open(tt.job, tt.runtime, tt.varName, tt.sealed)
		if !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open = %q, %v; want ErrOpen", tt.name, got, err)
		}
	}
}

func TestSealerConcurrentUse(t *testing.T) {
	s := newTestSealer(t, 1)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			name := fmt.Sprint("VAR", i)
			sealed, err := s.Seal("j1", "chains", name, []byte(name))
			if err == nil {
				var got []byte
				got, err = s.Open("j1", "chains", name, sealed)
				if err == nil && string(got) != name {
					err = fmt.Errorf("opened %q", got)
				}
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
