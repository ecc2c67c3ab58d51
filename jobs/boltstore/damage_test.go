package boltstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenDamagedStore: a truncated or overwritten store file fails to
// open with ErrDamaged naming the file and the way out, never a panic.
func TestOpenDamagedStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jobfs.db")
	s, err := Open(path)
	mustOK(t, err)
	for i := 0; i < 300; i++ {
		j := mustStoreJob(t, s, "dmg"+itoa(uint64(i)), 1000, jobName("damaged"+itoa(uint64(i))))
		mustCreateRun(t, s, j.ID, Run{Status: Completed, Queued: t0, Error: strings.Repeat("x", 500)})
	}
	mustOK(t, s.Close())
	good, err := os.ReadFile(path)
	mustOK(t, err)

	garbage := func(b []byte, from int) []byte {
		b = append([]byte(nil), b...)
		for i := from; i < len(b); i++ {
			b[i] = byte(i * 7)
		}
		return b
	}
	cases := map[string][]byte{
		"truncated to 10000 bytes": good[:10000],
		"truncated to half":        good[:len(good)/2],
		"truncated to 100 bytes":   good[:100],
		"pages overwritten":        garbage(good, 3*4096),
		"header overwritten":       garbage(good, 0),
	}
	cases["emptied, beside job folders"] = nil
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "jobfs.db")
			mustOK(t, os.WriteFile(p, content, 0o600))
			mustOK(t, os.MkdirAll(filepath.Join(filepath.Dir(p), "jobs", "dmg0"), 0o700))
			s, err := Open(p)
			if err == nil {
				_, err = s.AllJobs()
				if err == nil {
					_, err = s.ActiveRuns()
				}
				s.Close()
			}
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("open = %v, want ErrDamaged", err)
			}
			for _, want := range []string{p, "restore it from a copy", "mv " + p + " " + p + ".damaged"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
