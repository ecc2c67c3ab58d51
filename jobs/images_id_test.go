package jobs

import (
	"testing"

	"github.com/jobfs/jobfs/jobs/image"
)

// TestIsObjectID: only a bare object id names a snapshot folder. git runs
// as the repository's owner, who can make rev-parse print a path
// (":/../../0/<id>" put another user's snapshot, and root's, in place).
func TestIsObjectID(t *testing.T) {
	for s, want := range map[string]bool{
		"0123456789abcdef0123456789abcdef01234567":                         true,
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": true,
		":/../../0/0123456789abcdef0123456789abcdef01234567":               false,
		"0123456789ABCDEF0123456789abcdef01234567":                         false,
		"0123456789abcdef0123456789abcdef0123456":                          false,
		"../../../../tmp/x": false,
		"":                  false,
	} {
		if got := image.IsObjectID(s); got != want {
			t.Errorf("IsObjectID(%q) = %v, want %v", s, got, want)
		}
	}
}
