package jobs

import (
	"fmt"
	"sync"
)

// MaxRoleSize bounds what a share file takes: "runner\n" with room to spare.
const MaxRoleSize = 64

// ShareWrite is one open of a share file for writing: each write replaces
// the share's role (validated, so the shell's echo sees a refusal). A
// share that CreateShareWrite made (touch shared/@bob grants viewer at
// once) is taken back when the role written next is refused: a share left
// behind would grant a role the user was told was refused.
type ShareWrite struct {
	m       *Manager
	jobID   string
	name    string
	created bool // the session made the share: undone if its role is refused

	mu     sync.Mutex
	buf    []byte
	wrote  bool // a role was stored (and logged)
	failed bool // a write was refused: nothing more is taken
}

// OpenShareWrite starts writing the role of an existing share.
func (m *Manager) OpenShareWrite(jobID, name string) *ShareWrite {
	return &ShareWrite{m: m, jobID: jobID, name: name}
}

// CreateShareWrite grants a new share as viewer at once and starts writing
// its role. An existing share is kept as it is (and not undone).
func (m *Manager) CreateShareWrite(jobID, name string) (*ShareWrite, error) {
	created, err := m.createShare(jobID, name)
	if err != nil {
		return nil, err
	}
	return &ShareWrite{m: m, jobID: jobID, name: name, created: created}, nil
}

// Write takes data at off and stores the role the content names. A refusal
// fails the session and takes back a share it created.
func (w *ShareWrite) Write(data []byte, off int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed {
		return errorf(ErrInvalid, "shared/%s: an earlier write to this open file was refused", w.name)
	}
	var err error
	if !fitsAt(off, len(data), MaxRoleSize) {
		err = w.m.Refuse(w.jobID, "shared/"+w.name, fmt.Sprintf("a role is at most %d bytes: write viewer or runner", MaxRoleSize))
	} else {
		w.buf = writeAt(w.buf, data, off)
		err = w.m.SetShare(w.jobID, w.name, string(w.buf))
	}
	if err != nil {
		w.failed = true
		if w.created && !w.wrote {
			w.m.undoCreateShare(w.jobID, w.name)
		}
		return err
	}
	w.wrote = true
	return nil
}

// Close logs a share created with nothing written (touch).
func (w *ShareWrite) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.created && !w.wrote && !w.failed {
		w.m.shareCreated(w.jobID, w.name)
	}
}
