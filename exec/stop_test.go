package exec

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestKillCutsTheGraceShort: with a context from WithStop, a kill after a
// stop SIGKILLs a step that ignores SIGTERM at once; the grace (longer
// than the test's deadline) is not waited out.
func TestKillCutsTheGraceShort(t *testing.T) {
	s := newStep(t, "#!/bin/sh\ntrap '' TERM\necho ready\nwhile :; do sleep 0.1; done\n")
	spec := s.spec()
	spec.Grace = 10 * time.Minute
	ctx, cancel := WithStop(context.Background())
	defer cancel(nil)
	done := make(chan Result, 1)
	go func() { done <- Run(ctx, spec) }()
	for i := 0; i < 6000 && !strings.Contains(readLogIfAny(s), "ready"); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	cancel(errors.New("stopped"))
	cancel(ErrKill)
	var res Result
	select {
	case res = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the step outlived a kill by a minute")
	}
	if res.Outcome != Cancelled || res.ExitCode != 137 {
		t.Errorf("Run after stop and kill = %+v, want Cancelled with 137 (SIGKILL)", res)
	}
}

func readLogIfAny(s step) string {
	b, _ := os.ReadFile(s.log) // not there yet: empty
	return string(b)
}
