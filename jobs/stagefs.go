package jobs

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/jobfs/jobfs/exec/beneath"
)

// The staged input (MOUNT/<job>/input) is an ordinary folder kept on disk in
// the job's folder (root-owned, inside the 0700 state folder): subfolders,
// modes, times, symlinks that stay inside it, hard links, FIFOs and
// sockets, rename. The file system names its entries by their place below
// that folder (rel, "" for input/ itself) and gets back attributes and
// open files (StagedFile), never a path, so a remote executor can serve the
// same tree.
//
// The daemon follows no symlink here: every place is resolved below the
// stage folder with package beneath (a symlink or a mount on the way is
// ENOENT), and every call on the last name is the *at form that does not
// follow it. A symlink is made only when its target stays inside input/
// (the kernel resolves it, never the daemon). Device nodes are refused.
// Whatever is made here belongs to the job's owner, the user the steps run
// as, so a step can read what a runner staged. Roles are the caller's to
// check (a runner or more may change input/); errors are errnos or domain
// errors.

// stageResolve is beneath's: no symlink, no "..", no mount crossed.
const stageResolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// StageEntry is one entry of a staged folder: its name, file type bits and
// inode number on disk.
type StageEntry struct {
	Name string
	Type uint32
	Ino  uint64
}

// StageAttr is one change of a staged entry's attributes (a SETATTR): the
// Set fields say which apply. Times are unix.UTIME_OMIT, UTIME_NOW or a
// time. Only a root caller (ByRoot) changes owner or group; anyone else
// may only name what is there.
type StageAttr struct {
	SetMode, SetUID, SetGID, SetSize bool
	Mode, UID, GID                   uint32
	Size                             uint64
	Atime, Mtime                     unix.Timespec
	ByRoot                           bool
}

// stageDirFD opens the folder rel below the job's stage folder (O_PATH).
func (m *Manager) stageDirFD(jobID, rel string) (int, error) {
	fd, err := beneath.Open(m.StageDir(jobID), rel, unix.O_PATH|unix.O_DIRECTORY)
	return fd, beneathErr(err)
}

// stageParentFD opens the folder holding rel and returns it with rel's
// last name.
func (m *Manager) stageParentFD(jobID, rel string) (int, string, error) {
	dir := filepath.Dir(rel)
	if dir == "." {
		dir = ""
	}
	fd, err := m.stageDirFD(jobID, dir)
	return fd, filepath.Base(rel), err
}

// Staging is the staged input of one job (MOUNT/<job>/input), as fs
// works on it: each call opens what it names beneath the job's input
// folder through no symlink, as the caller's request says.
type Staging struct {
	m     *Manager
	jobID string
}

// Staging returns the staged input of job jobID.
func (m *Manager) Staging(jobID string) Staging { return Staging{m: m, jobID: jobID} }

// Stat describes the staged entry rel itself, a symlink not followed.
func (s Staging) Stat(rel string) (unix.Stat_t, error) {
	m, jobID := s.m, s.jobID
	var st unix.Stat_t
	if rel == "" {
		fd, err := m.stageDirFD(jobID, "")
		if err != nil {
			return st, err
		}
		defer beneath.CloseFd(fd)
		return st, unix.Fstat(fd, &st)
	}
	pfd, name, err := m.stageParentFD(jobID, rel)
	if err != nil {
		return st, err
	}
	defer beneath.CloseFd(pfd)
	return st, unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
}

// ReadDir lists the staged folder rel, sorted by name; an entry
// removed meanwhile is left out (a lookup would not find it).
func (s Staging) ReadDir(rel string) ([]StageEntry, error) {
	m, jobID := s.m, s.jobID
	pfd, err := m.stageDirFD(jobID, rel)
	if err != nil {
		return nil, err
	}
	defer beneath.CloseFd(pfd)
	list, err := beneath.ReadDir(m.StageDir(jobID), rel)
	if err != nil {
		return nil, beneathErr(err)
	}
	ents := make([]StageEntry, 0, len(list))
	for _, e := range list {
		var st unix.Stat_t
		if unix.Fstatat(pfd, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue // removed meanwhile
		}
		ents = append(ents, StageEntry{Name: e.Name(), Type: st.Mode & unix.S_IFMT, Ino: st.Ino})
	}
	return ents, nil
}

// stageNameFree refuses input/input.json: the name is the data payload's.
func (m *Manager) stageNameFree(jobID, dir, name string) error {
	if dir == "" && name == "input.json" {
		return m.Refuse(jobID, "input/input.json", "the name is taken by the data payload; write the payload to data")
	}
	return nil
}

// Mkdir makes the folder name in the staged folder dir with mode (the
// daemon's umask does not apply), owned by the job's owner.
func (s Staging) Mkdir(dir, name string, mode uint32) (unix.Stat_t, error) {
	m, jobID := s.m, s.jobID
	mode &^= SetIDDropped(mode, true)
	return m.stageMake(jobID, dir, name, mode, func(fd int) error { return unix.Mkdirat(fd, name, mode&0o7777) })
}

// Mknod makes a FIFO, socket or empty file; a device node is refused
// (EPERM, the reason in the job's log).
func (s Staging) Mknod(dir, name string, mode uint32) (unix.Stat_t, error) {
	m, jobID := s.m, s.jobID
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFREG:
	default:
		return unix.Stat_t{}, m.refusePerm(jobID, filepath.Join(dir, name), "device nodes cannot be staged")
	}
	mode &^= SetIDDropped(mode, false) // quietly at a create, as a create without the right does
	return m.stageMake(jobID, dir, name, mode, func(fd int) error { return unix.Mknodat(fd, name, mode, 0) })
}

// stageMake makes name in dir with mk (mkdirat, mknodat), then gives it
// mode and the job owner.
func (m *Manager) stageMake(jobID, dir, name string, mode uint32, mk func(pfd int) error) (unix.Stat_t, error) {
	if err := m.stageNameFree(jobID, dir, name); err != nil {
		return unix.Stat_t{}, err
	}
	pfd, err := m.stageDirFD(jobID, dir)
	if err != nil {
		return unix.Stat_t{}, err
	}
	defer beneath.CloseFd(pfd)
	if err := mk(pfd); err != nil {
		return unix.Stat_t{}, err
	}
	if fd, err := beneath.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW); err == nil {
		m.stageToOwner(jobID, fd, "") // first: a chown clears set-id bits
		if err := chmodFD(fd, mode&0o7777); err != nil {
			_ = m.Refuse(jobID, "input/"+filepath.Join(dir, name), "mode not applied: "+err.Error()) // logged; the entry exists
		}
		beneath.CloseFd(fd)
	}
	return statAt(pfd, name)
}

// Symlink makes a symlink whose target stays inside input/; another
// is refused (EPERM, the reason in the job's log).
func (s Staging) Symlink(dir, target, name string) (unix.Stat_t, error) {
	m, jobID := s.m, s.jobID
	if err := m.stageNameFree(jobID, dir, name); err != nil {
		return unix.Stat_t{}, err
	}
	if !insideStage(dir, target) {
		return unix.Stat_t{}, m.refusePerm(jobID, filepath.Join(dir, name), "a symlink in input/ must point inside input/ (relative, not climbing out): "+target)
	}
	pfd, err := m.stageDirFD(jobID, dir)
	if err != nil {
		return unix.Stat_t{}, err
	}
	defer beneath.CloseFd(pfd)
	if err := unix.Symlinkat(target, pfd, name); err != nil {
		return unix.Stat_t{}, err
	}
	m.stageToOwner(jobID, pfd, name)
	return statAt(pfd, name)
}

// refusePerm logs why and answers EPERM.
func (m *Manager) refusePerm(jobID, rel, reason string) error {
	_ = m.Refuse(jobID, "input/"+rel, reason) // the answer is EPERM, not the refusal's EINVAL
	return syscall.EPERM
}

// insideStage reports whether a symlink in folder dir (relative to input/)
// with this target names something inside input/.
func insideStage(dir, target string) bool {
	if target == "" || filepath.IsAbs(target) {
		return false
	}
	p := filepath.Clean(filepath.Join("/", dir, target))
	q := filepath.Clean(filepath.Join(dir, target))
	return p == "/"+q || (q == "." && p == "/")
}

// Link makes name in dir a hard link to the staged entry target.
func (s Staging) Link(target, dir, name string) (unix.Stat_t, error) {
	m, jobID := s.m, s.jobID
	if err := m.stageNameFree(jobID, dir, name); err != nil {
		return unix.Stat_t{}, err
	}
	if target == "" {
		return unix.Stat_t{}, syscall.EPERM // input/ itself
	}
	tpfd, tname, err := m.stageParentFD(jobID, target)
	if err != nil {
		return unix.Stat_t{}, err
	}
	defer beneath.CloseFd(tpfd)
	pfd, err := m.stageDirFD(jobID, dir)
	if err != nil {
		return unix.Stat_t{}, err
	}
	defer beneath.CloseFd(pfd)
	if err := unix.Linkat(tpfd, tname, pfd, name, 0); err != nil {
		return unix.Stat_t{}, err
	}
	return statAt(pfd, name)
}

// Create opens name in dir with the open flags, creating it with mode
// (owned by the job's owner) unless it is there and O_EXCL is not asked.
func (s Staging) Create(dir, name string, flags, mode uint32) (*StagedFile, unix.Stat_t, error) {
	m, jobID := s.m, s.jobID
	if err := m.stageNameFree(jobID, dir, name); err != nil {
		return nil, unix.Stat_t{}, err
	}
	pfd, err := m.stageDirFD(jobID, dir)
	if err != nil {
		return nil, unix.Stat_t{}, err
	}
	defer beneath.CloseFd(pfd)
	mode &^= SetIDDropped(mode, false) // quietly at a create, as a create without the right does
	open := openFlags(flags)&^(unix.O_CREAT|unix.O_EXCL) | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat2(pfd, name, &unix.OpenHow{Flags: uint64(open | unix.O_CREAT | unix.O_EXCL), Mode: uint64(mode & 0o7777), Resolve: stageResolve})
	created := err == nil
	if err == unix.EEXIST && flags&unix.O_EXCL == 0 {
		fd, err = unix.Openat2(pfd, name, &unix.OpenHow{Flags: uint64(open), Resolve: stageResolve})
	}
	if err != nil {
		return nil, unix.Stat_t{}, err
	}
	if created {
		m.stageToOwner(jobID, fd, "") // first: a chown clears set-id bits
		if err := unix.Fchmod(fd, mode&0o7777); err != nil {
			_ = unix.Close(fd) // nothing written yet; the chmod error is the answer
			return nil, unix.Stat_t{}, err
		}
	}
	st, err := statAt(pfd, name)
	if err != nil {
		_ = unix.Close(fd) // nothing written yet; the stat error is the answer
		return nil, st, err
	}
	return m.newStagedFile(jobID, fd, flags), st, nil
}

// Remove removes name from the staged folder dir (isDir: rmdir).
func (s Staging) Remove(dir, name string, isDir bool) error {
	m, jobID := s.m, s.jobID
	pfd, err := m.stageDirFD(jobID, dir)
	if err != nil {
		return err
	}
	defer beneath.CloseFd(pfd)
	flags := 0
	if isDir {
		flags = unix.AT_REMOVEDIR
	}
	return unix.Unlinkat(pfd, name, flags)
}

// Rename renames dir/name to newDir/newName (renameat2 flags). The
// name input/input.json is the data payload's: a plain rename onto it is
// refused with the reason, one with flags is EXDEV (mv then copies, and its
// create is refused with the reason).
func (s Staging) Rename(dir, name, newDir, newName string, flags uint32) error {
	m, jobID := s.m, s.jobID
	if err := m.stageNameFree(jobID, dir, name); err != nil {
		return err
	}
	if newDir == "" && newName == "input.json" {
		if flags != 0 {
			return syscall.EXDEV
		}
		return m.stageNameFree(jobID, newDir, newName)
	}
	pfd, err := m.stageDirFD(jobID, dir)
	if err != nil {
		return err
	}
	defer beneath.CloseFd(pfd)
	npfd, err := m.stageDirFD(jobID, newDir)
	if err != nil {
		return err
	}
	defer beneath.CloseFd(npfd)
	return unix.Renameat2(pfd, name, npfd, newName, uint(flags))
}

// Readlink returns a staged symlink's target, read without following
// it. A link that, followed, leads out of input/ (links to links, a
// folder renamed or replaced by a link since it was made) is EPERM: the
// kernel follows a link by its target as read here, for whoever reads, root
// too. (Best effort: input/ may change between this read and the rest of
// the kernel's walk; a run's input is checked once frozen, dropLinksOut.)
func (s Staging) Readlink(rel string) ([]byte, error) {
	m, jobID := s.m, s.jobID
	root, err := m.stageDirFD(jobID, "")
	if err != nil {
		return nil, err
	}
	out := beneath.LeadsOut(root, rel)
	beneath.CloseFd(root)
	if out {
		return nil, syscall.EPERM
	}
	pfd, name, err := m.stageParentFD(jobID, rel)
	if err != nil {
		return nil, err
	}
	defer beneath.CloseFd(pfd)
	buf := make([]byte, 4096)
	k, err := unix.Readlinkat(pfd, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:k], nil
}

// Setattr applies mode, owner, size and times to the open file f when
// there is one, else to the entry rel (never through a symlink), and
// returns the attributes after.
func (s Staging) Setattr(rel string, f *StagedFile, a StageAttr) (unix.Stat_t, error) {
	m, jobID := s.m, s.jobID
	fd, name, done, err := m.stageTarget(jobID, rel, f)
	if err != nil {
		return unix.Stat_t{}, err
	}
	defer done()
	if a.SetMode && a.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW|emptyPath(name)); err != nil {
			return unix.Stat_t{}, err
		}
		if drop := SetIDDropped(a.Mode, st.Mode&unix.S_IFMT == unix.S_IFDIR); drop != 0 {
			// Dropped, not refused: cp -a, rsync -a, tar -x and install -m
			// of a set-user-ID program would fail on it (the kernel drops
			// a set-group-ID it will not grant the same quiet way).
			m.event(jobID, "input/%s: mode %04o set as %04o: set-user-ID and set-group-ID bits are not kept in input/ (a staged file holds what anyone allowed to stage wrote; steps run without them)", rel, a.Mode&0o7777, a.Mode&0o7777&^drop)
			a.Mode &^= drop
		}
	}
	if err := setattrAt(fd, name, a); err != nil {
		return unix.Stat_t{}, err
	}
	var st unix.Stat_t
	err = unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW|emptyPath(name))
	return st, err
}

// stageTarget returns a descriptor and name for the *at calls: the open
// file's own descriptor and "" when there is one, input/ itself and "" for
// rel "", else the parent folder and the last name.
func (m *Manager) stageTarget(jobID, rel string, f *StagedFile) (fd int, name string, done func(), err error) {
	switch {
	case f != nil:
		return f.fd, "", func() {}, nil
	case rel == "":
		dfd, err := m.stageDirFD(jobID, "")
		if err != nil {
			return -1, "", nil, err
		}
		return dfd, "", func() { beneath.CloseFd(dfd) }, nil
	}
	pfd, name, err := m.stageParentFD(jobID, rel)
	if err != nil {
		return -1, "", nil, err
	}
	return pfd, name, func() { beneath.CloseFd(pfd) }, nil
}

// Open opens the staged file rel with the open flags (O_CREAT and
// O_EXCL are dropped). A FIFO does not hang the daemon: it is opened
// non-blocking, then made blocking unless the caller asked otherwise.
func (s Staging) Open(rel string, flags uint32) (*StagedFile, error) {
	m, jobID := s.m, s.jobID
	pfd, name, err := m.stageParentFD(jobID, rel)
	if err != nil {
		return nil, err
	}
	defer beneath.CloseFd(pfd)
	open := openFlags(flags)&^(unix.O_CREAT|unix.O_EXCL) | unix.O_NOFOLLOW | unix.O_NONBLOCK
	fd, err := beneath.Openat(pfd, name, open)
	if err != nil {
		return nil, beneathErr(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK) // a regular file ignores it
		}
	}
	return m.newStagedFile(jobID, fd, flags), nil
}

// SetIDDropped is what mode loses in input/ (a chmod, a create, and the
// mode the tree shows of a file an older jobfs staged): a staged file is
// the job owner's (root's, for root's jobs) but holds the bytes of whoever
// may stage, so a set-user-ID or set-group-ID bit on it would run those
// bytes with the owner's rights for anyone who copies it out with its mode
// (cp -a as root) and runs the copy. Steps run nosuid anyway. A folder's
// set-group-ID bit (new entries take its group) is kept.
func SetIDDropped(mode uint32, isDir bool) uint32 {
	if isDir {
		return mode & unix.S_ISUID
	}
	return mode & (unix.S_ISUID | unix.S_ISGID)
}

// openFlagBits are the open flags a staged file is opened with; the
// kernel's FUSE open flags also carry bits of its own that openat2 refuses
// with EINVAL (__FMODE_EXEC, 0x20, when the file is being executed) or
// that a 64-bit process has no need of (O_LARGEFILE).
const openFlagBits = unix.O_ACCMODE | unix.O_APPEND | unix.O_NONBLOCK | unix.O_DSYNC | unix.O_SYNC | unix.O_DIRECT |
	unix.O_NOATIME | unix.O_TRUNC | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY

// openFlags keeps of a FUSE open's flags those openat2 takes.
func openFlags(flags uint32) int { return int(flags) & openFlagBits }

// stageToOwner makes fd (or name below it, not followed) the job owner's,
// when the daemon may: a runner's staged files are read by steps running
// as the owner. A daemon that is not root owns them already.
func (m *Manager) stageToOwner(jobID string, fd int, name string) {
	if os.Geteuid() != 0 {
		return
	}
	j, err := m.JobByID(jobID)
	if err != nil {
		return // the job is gone: nothing will run it
	}
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	// A failure leaves it root's: the step may not read it, and says so.
	_ = unix.Fchownat(fd, name, int(j.Owner), int(primaryGroup(j.Owner)), flags)
}

func statAt(pfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

func emptyPath(name string) int {
	if name == "" {
		return unix.AT_EMPTY_PATH
	}
	return 0
}

// procFD names what a descriptor refers to, through its /proc/self/fd
// link: that very inode, also for an O_PATH descriptor.
func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// chmodFD sets the mode of what an O_PATH descriptor refers to (not a
// symlink).
func chmodFD(fd int, mode uint32) error {
	return unix.Fchmodat(unix.AT_FDCWD, procFD(fd), mode, 0)
}

// setattrAt applies one StageAttr to name below fd ("" for fd itself).
func setattrAt(fd int, name string, a StageAttr) error {
	if a.SetMode {
		if err := chmodAt(fd, name, a.Mode&0o7777); err != nil {
			return err
		}
	}
	if err := chownAt(fd, name, a); err != nil {
		return err
	}
	if a.SetSize {
		if err := truncateAt(fd, name, a.Size); err != nil {
			return err
		}
	}
	return setTimes(fd, name, a)
}

// chmodAt changes the mode of name (not a symlink: EOPNOTSUPP, as lchmod).
func chmodAt(fd int, name string, mode uint32) error {
	if name == "" {
		return chmodFD(fd, mode) // an open staged file or folder, not a symlink
	}
	pfd, err := beneath.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return beneathErr(err)
	}
	defer beneath.CloseFd(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return syscall.EOPNOTSUPP
	}
	return chmodFD(pfd, mode)
}

// chownAt changes owner and group: root may give any, others only keep
// what is there.
func chownAt(fd int, name string, a StageAttr) error {
	if !a.SetUID && !a.SetGID {
		return nil
	}
	u, g := -1, -1
	if a.SetUID {
		u = int(a.UID)
	}
	if a.SetGID {
		g = int(a.GID)
	}
	if !a.ByRoot {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW|emptyPath(name)); err != nil {
			return err
		}
		if (a.SetUID && a.UID != st.Uid) || (a.SetGID && a.GID != st.Gid) {
			return syscall.EPERM
		}
		return nil
	}
	return unix.Fchownat(fd, name, u, g, unix.AT_SYMLINK_NOFOLLOW|emptyPath(name))
}

func truncateAt(fd int, name string, size uint64) error {
	var wfd int
	var err error
	if name == "" {
		wfd, err = unix.Open(procFD(fd), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0) // the open file itself
	} else {
		wfd, err = beneath.Openat(fd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
		err = beneathErr(err)
	}
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(wfd) }() // only truncated: nothing buffered
	return unix.Ftruncate(wfd, int64(size))
}

// setTimes applies the times of a StageAttr (now, a given time, or left).
func setTimes(fd int, name string, a StageAttr) error {
	if a.Atime.Nsec == unix.UTIME_OMIT && a.Mtime.Nsec == unix.UTIME_OMIT {
		return nil
	}
	ts := []unix.Timespec{a.Atime, a.Mtime}
	if name != "" {
		return unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	// The descriptor itself (O_PATH or open), through its /proc link.
	return unix.UtimesNanoAt(unix.AT_FDCWD, procFD(fd), ts, 0)
}

// StagedFile is a staged file open for reading or writing. A writer is
// reported to the Manager (StageOpen), so a run leaves the file staged
// while it is written.
type StagedFile struct {
	fd int
	w  *StageWriter // nil unless open for writing
}

func (m *Manager) newStagedFile(jobID string, fd int, flags uint32) *StagedFile {
	f := &StagedFile{fd: fd}
	if flags&unix.O_ACCMODE != unix.O_RDONLY {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			f.w = m.stageOpen(jobID, stageIno(st.Ino))
		}
	}
	return f
}

// stageIno keeps the disk's inode number, but for the two numbers the file
// system reserves; the file system shows the same.
func stageIno(ino uint64) uint64 {
	if ino == 0 || ino == ^uint64(0) {
		return 2
	}
	return ino
}

// ReadAt reads at off (one pread: a short read is no error).
func (f *StagedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := unix.Pread(f.fd, p, off)
	return max(n, 0), err
}

// WriteAt writes at off (one pwrite, also with O_APPEND).
func (f *StagedFile) WriteAt(p []byte, off int64) (int, error) {
	if f.w != nil {
		f.w.Wrote()
	}
	n, err := unix.Pwrite(f.fd, p, off)
	return max(n, 0), err
}

// Flush reports an error of the data written so far, as close(2) would:
// it closes a duplicate of the descriptor, which stays open.
func (f *StagedFile) Flush() error {
	nfd, err := unix.Dup(f.fd)
	if err == nil {
		err = unix.Close(nfd)
	}
	if f.w != nil {
		f.w.Flushed()
	}
	return err
}

// Sync writes the file to disk (fsync).
func (f *StagedFile) Sync() error { return unix.Fsync(f.fd) }

// Truncate sets the file's size.
func (f *StagedFile) Truncate(size int64) error {
	if f.w != nil {
		f.w.Wrote()
	}
	return unix.Ftruncate(f.fd, size)
}

// Stat describes the open file (also after its name was removed).
func (f *StagedFile) Stat() (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(f.fd, &st)
	return st, err
}

// Seek is lseek(2), SEEK_DATA and SEEK_HOLE included.
func (f *StagedFile) Seek(off int64, whence int) (int64, error) {
	return unix.Seek(f.fd, off, whence)
}

// Allocate is fallocate(2).
func (f *StagedFile) Allocate(off, size uint64, mode uint32) error {
	if f.w != nil {
		f.w.Wrote()
	}
	return unix.Fallocate(f.fd, mode, int64(off), int64(size))
}

// Close closes the file and tells the Manager its writer is gone.
func (f *StagedFile) Close() error {
	if f.w != nil {
		f.w.Closed()
	}
	return unix.Close(f.fd)
}

// Fd is the open file's descriptor (the local implementation's), which
// FUSE passthrough hands to the kernel; it stays open until Close.
func (f *StagedFile) Fd() uintptr { return uintptr(f.fd) }
