package exec

import (
	"os"
	"strings"
	"testing"
)

// The probe starts a real step the way a normal user's daemon would (user,
// mount, pid, ipc, uts and network namespaces, the private root); here it
// runs as whoever runs the tests. The refusal by a sysctl or AppArmor
// cannot be produced on the test machine (its sysctls are read-only to the
// tests), so only the reason of a failed start is checked.
func TestProbeUserNS(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := ProbeUserNS(self, t.TempDir()); err != nil {
		t.Errorf("probe with this host's user namespaces: %v", err)
	}
	err = ProbeUserNS("/nonexistent/jobfs-init", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "start the step init /nonexistent/jobfs-init") {
		t.Errorf("probe with a missing init: %v, want its reason", err)
	}
}
