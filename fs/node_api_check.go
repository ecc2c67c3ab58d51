package fs

import gofs "github.com/hanwen/go-fuse/v2/fs"

// Every node kind's and file handle's go-fuse interfaces, asserted at compile
// time. go-fuse finds an operation by a type assertion at run time: a method
// whose signature drifts from the interface is silently never called (the
// kernel gets ENOSYS or go-fuse's default). With these, it does not build.
// A new node kind, or a new operation on one, adds its line here.

var (
	_ gofs.NodeStatfser  = (*configDir)(nil)
	_ gofs.NodeAccesser  = (*configDir)(nil)
	_ gofs.NodeGetattrer = (*configDir)(nil)
	_ gofs.NodeSetattrer = (*configDir)(nil)
	_ gofs.NodeLookuper  = (*configDir)(nil)
	_ gofs.NodeOpendirer = (*configDir)(nil)
	_ gofs.NodeReaddirer = (*configDir)(nil)
	_ gofs.NodeMkdirer   = (*configDir)(nil)
	_ gofs.NodeCreater   = (*configDir)(nil)
	_ gofs.NodeUnlinker  = (*configDir)(nil)
	_ gofs.NodeRmdirer   = (*configDir)(nil)
	_ gofs.NodeRenamer   = (*configDir)(nil)
	_ gofs.FileLookuper  = (*configDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*ctlFile)(nil)
	_ gofs.NodeAccesser  = (*ctlFile)(nil)
	_ gofs.NodeGetattrer = (*ctlFile)(nil)
	_ gofs.NodeSetattrer = (*ctlFile)(nil)
	_ gofs.NodeOpener    = (*ctlFile)(nil)
)

var (
	_ gofs.FileReader = (*ctlHandle)(nil)
	_ gofs.FileWriter = (*ctlHandle)(nil)
)

var (
	_ gofs.NodeStatfser  = (*dataFile)(nil)
	_ gofs.NodeAccesser  = (*dataFile)(nil)
	_ gofs.NodeGetattrer = (*dataFile)(nil)
	_ gofs.NodeSetattrer = (*dataFile)(nil)
	_ gofs.NodeOpener    = (*dataFile)(nil)
)

var (
	_ gofs.FileReleaser = (*dataHandle)(nil)
	_ gofs.FileReader   = (*dataHandle)(nil)
	_ gofs.FileWriter   = (*dataHandle)(nil)
	_ gofs.FileFlusher  = (*dataHandle)(nil)
	_ gofs.FileFsyncer  = (*dataHandle)(nil)
)

var (
	_ gofs.NodeStatfser  = (*diskDir)(nil)
	_ gofs.NodeAccesser  = (*diskDir)(nil)
	_ gofs.NodeGetattrer = (*diskDir)(nil)
	_ gofs.NodeLookuper  = (*diskDir)(nil)
	_ gofs.NodeOpendirer = (*diskDir)(nil)
	_ gofs.NodeReaddirer = (*diskDir)(nil)
	_ gofs.NodeUnlinker  = (*diskDir)(nil)
	_ gofs.NodeRmdirer   = (*diskDir)(nil)
	_ gofs.FileLookuper  = (*diskDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*diskFile)(nil)
	_ gofs.NodeAccesser  = (*diskFile)(nil)
	_ gofs.NodeGetattrer = (*diskFile)(nil)
	_ gofs.NodeOpener    = (*diskFile)(nil)

	_ gofs.NodeStatfser   = (*diskOther)(nil)
	_ gofs.NodeAccesser   = (*diskOther)(nil)
	_ gofs.NodeGetattrer  = (*diskOther)(nil)
	_ gofs.NodeReadlinker = (*diskOther)(nil)
)

var (
	_ gofs.NodeStatfser  = (*dotDir)(nil)
	_ gofs.NodeAccesser  = (*dotDir)(nil)
	_ gofs.NodeGetattrer = (*dotDir)(nil)
	_ gofs.NodeLookuper  = (*dotDir)(nil)
	_ gofs.NodeReaddirer = (*dotDir)(nil)
	_ gofs.NodeMkdirer   = (*dotDir)(nil)
	_ gofs.NodeCreater   = (*dotDir)(nil)
	_ gofs.NodeUnlinker  = (*dotDir)(nil)
	_ gofs.FileLookuper  = (*dotDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*envDir)(nil)
	_ gofs.NodeAccesser  = (*envDir)(nil)
	_ gofs.NodeGetattrer = (*envDir)(nil)
	_ gofs.NodeSetattrer = (*envDir)(nil)
	_ gofs.NodeLookuper  = (*envDir)(nil)
	_ gofs.NodeOpendirer = (*envDir)(nil)
	_ gofs.NodeReaddirer = (*envDir)(nil)
	_ gofs.NodeCreater   = (*envDir)(nil)
	_ gofs.NodeUnlinker  = (*envDir)(nil)
	_ gofs.NodeRenamer   = (*envDir)(nil)
	_ gofs.FileLookuper  = (*envDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*envFile)(nil)
	_ gofs.NodeAccesser  = (*envFile)(nil)
	_ gofs.NodeGetattrer = (*envFile)(nil)
	_ gofs.NodeSetattrer = (*envFile)(nil)
	_ gofs.NodeOpener    = (*envFile)(nil)
)

var (
	_ gofs.FileReleaser = (*envHandle)(nil)
	_ gofs.FileReader   = (*envHandle)(nil)
	_ gofs.FileWriter   = (*envHandle)(nil)
	_ gofs.FileFlusher  = (*envHandle)(nil)
	_ gofs.FileFsyncer  = (*envHandle)(nil)
)

var (
	_ gofs.NodeStatfser  = (*eventsFile)(nil)
	_ gofs.NodeAccesser  = (*eventsFile)(nil)
	_ gofs.NodeGetattrer = (*eventsFile)(nil)
	_ gofs.NodeOpener    = (*eventsFile)(nil)
)

var (
	_ gofs.FileReleaser = (*eventsHandle)(nil)
	_ gofs.FileReader   = (*eventsHandle)(nil)
)

var (
	_ gofs.NodeStatfser  = (*jobCmdFile)(nil)
	_ gofs.NodeAccesser  = (*jobCmdFile)(nil)
	_ gofs.NodeGetattrer = (*jobCmdFile)(nil)
	_ gofs.NodeSetattrer = (*jobCmdFile)(nil)
	_ gofs.NodeOpener    = (*jobCmdFile)(nil)
)

var (
	_ gofs.FileReader = (*jobCmdHandle)(nil)
	_ gofs.FileWriter = (*jobCmdHandle)(nil)
)

var (
	_ gofs.NodeStatfser  = (*jobDir)(nil)
	_ gofs.NodeAccesser  = (*jobDir)(nil)
	_ gofs.NodeGetattrer = (*jobDir)(nil)
	_ gofs.NodeSetattrer = (*jobDir)(nil)
	_ gofs.NodeLookuper  = (*jobDir)(nil)
	_ gofs.NodeOpendirer = (*jobDir)(nil)
	_ gofs.NodeReaddirer = (*jobDir)(nil)
	_ gofs.NodeMkdirer   = (*jobDir)(nil)
	_ gofs.NodeCreater   = (*jobDir)(nil)
	_ gofs.NodeUnlinker  = (*jobDir)(nil)
	_ gofs.NodeRmdirer   = (*jobDir)(nil)
	_ gofs.NodeRenamer   = (*jobDir)(nil)
	_ gofs.FileLookuper  = (*jobDir)(nil)
)

var (
	_ gofs.NodeStatfser   = (*latestLink)(nil)
	_ gofs.NodeAccesser   = (*latestLink)(nil)
	_ gofs.NodeGetattrer  = (*latestLink)(nil)
	_ gofs.NodeReadlinker = (*latestLink)(nil)
)

var (
	_ gofs.NodeStatfser  = (*logFile)(nil)
	_ gofs.NodeAccesser  = (*logFile)(nil)
	_ gofs.NodeGetattrer = (*logFile)(nil)
	_ gofs.NodeOpener    = (*logFile)(nil)
)

var (
	_ gofs.NodeStatfser  = (*ownerDir)(nil)
	_ gofs.NodeAccesser  = (*ownerDir)(nil)
	_ gofs.NodeGetattrer = (*ownerDir)(nil)
	_ gofs.NodeLookuper  = (*ownerDir)(nil)
	_ gofs.NodeReaddirer = (*ownerDir)(nil)
	_ gofs.NodeMkdirer   = (*ownerDir)(nil)
	_ gofs.NodeRmdirer   = (*ownerDir)(nil)
	_ gofs.NodeRenamer   = (*ownerDir)(nil)
	_ gofs.FileLookuper  = (*ownerDir)(nil)
)

var (
	_ gofs.FileReaddirenter = (*rootList)(nil)
	_ gofs.FileSeekdirer    = (*rootList)(nil)
	_ gofs.FileReleasedirer = (*rootList)(nil)
)

var (
	_ gofs.NodeStatfser       = (*rootDir)(nil)
	_ gofs.NodeAccesser       = (*rootDir)(nil)
	_ gofs.NodeGetattrer      = (*rootDir)(nil)
	_ gofs.NodeSetattrer      = (*rootDir)(nil)
	_ gofs.NodeLookuper       = (*rootDir)(nil)
	_ gofs.NodeReaddirer      = (*rootDir)(nil)
	_ gofs.NodeOpendirHandler = (*rootDir)(nil)
	_ gofs.NodeMkdirer        = (*rootDir)(nil)
	_ gofs.NodeCreater        = (*rootDir)(nil)
	_ gofs.NodeUnlinker       = (*rootDir)(nil)
	_ gofs.NodeRmdirer        = (*rootDir)(nil)
	_ gofs.NodeRenamer        = (*rootDir)(nil)
	_ gofs.FileLookuper       = (*rootDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*runDir)(nil)
	_ gofs.NodeAccesser  = (*runDir)(nil)
	_ gofs.NodeGetattrer = (*runDir)(nil)
	_ gofs.NodeLookuper  = (*runDir)(nil)
	_ gofs.NodeOpendirer = (*runDir)(nil)
	_ gofs.NodeReaddirer = (*runDir)(nil)
	_ gofs.NodeUnlinker  = (*runDir)(nil)
	_ gofs.NodeRmdirer   = (*runDir)(nil)
	_ gofs.FileLookuper  = (*runDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*runsDir)(nil)
	_ gofs.NodeAccesser  = (*runsDir)(nil)
	_ gofs.NodeGetattrer = (*runsDir)(nil)
	_ gofs.NodeLookuper  = (*runsDir)(nil)
	_ gofs.NodeOpendirer = (*runsDir)(nil)
	_ gofs.NodeReaddirer = (*runsDir)(nil)
	_ gofs.NodeUnlinker  = (*runsDir)(nil)
	_ gofs.NodeRmdirer   = (*runsDir)(nil)
	_ gofs.FileLookuper  = (*runsDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*settingFile)(nil)
	_ gofs.NodeAccesser  = (*settingFile)(nil)
	_ gofs.NodeGetattrer = (*settingFile)(nil)
	_ gofs.NodeSetattrer = (*settingFile)(nil)
	_ gofs.NodeOpener    = (*settingFile)(nil)
)

var (
	_ gofs.FileReleaser = (*settingHandle)(nil)
	_ gofs.FileReader   = (*settingHandle)(nil)
	_ gofs.FileWriter   = (*settingHandle)(nil)
	_ gofs.FileFlusher  = (*settingHandle)(nil)
	_ gofs.FileFsyncer  = (*settingHandle)(nil)
)

var (
	_ gofs.NodeStatfser  = (*sharedDir)(nil)
	_ gofs.NodeAccesser  = (*sharedDir)(nil)
	_ gofs.NodeGetattrer = (*sharedDir)(nil)
	_ gofs.NodeSetattrer = (*sharedDir)(nil)
	_ gofs.NodeLookuper  = (*sharedDir)(nil)
	_ gofs.NodeOpendirer = (*sharedDir)(nil)
	_ gofs.NodeReaddirer = (*sharedDir)(nil)
	_ gofs.NodeCreater   = (*sharedDir)(nil)
	_ gofs.NodeUnlinker  = (*sharedDir)(nil)
	_ gofs.FileLookuper  = (*sharedDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*shareFile)(nil)
	_ gofs.NodeAccesser  = (*shareFile)(nil)
	_ gofs.NodeGetattrer = (*shareFile)(nil)
	_ gofs.NodeSetattrer = (*shareFile)(nil)
	_ gofs.NodeOpener    = (*shareFile)(nil)
)

var (
	_ gofs.FileReleaser = (*shareHandle)(nil)
	_ gofs.FileReader   = (*shareHandle)(nil)
	_ gofs.FileWriter   = (*shareHandle)(nil)
)

var (
	_ gofs.NodeStatfser  = (*snapshotFile)(nil)
	_ gofs.NodeAccesser  = (*snapshotFile)(nil)
	_ gofs.NodeGetattrer = (*snapshotFile)(nil)
	_ gofs.NodeOpener    = (*snapshotFile)(nil)
)

var (
	_ gofs.FileReader = (*snapshotHandle)(nil)
)

var (
	_ gofs.NodeStatfser   = (*stagedFile)(nil)
	_ gofs.NodeAccesser   = (*stagedFile)(nil)
	_ gofs.NodeGetattrer  = (*stagedFile)(nil)
	_ gofs.NodeSetattrer  = (*stagedFile)(nil)
	_ gofs.NodeReadlinker = (*stagedFile)(nil)
	_ gofs.NodeOpener     = (*stagedFile)(nil)
	_ gofs.NodeLookuper   = (*stagedFile)(nil)
	_ gofs.NodeReaddirer  = (*stagedFile)(nil)
	_ gofs.NodeMkdirer    = (*stagedFile)(nil)
	_ gofs.NodeMknoder    = (*stagedFile)(nil)
	_ gofs.NodeLinker     = (*stagedFile)(nil)
	_ gofs.NodeSymlinker  = (*stagedFile)(nil)
	_ gofs.NodeCreater    = (*stagedFile)(nil)
	_ gofs.NodeUnlinker   = (*stagedFile)(nil)
	_ gofs.NodeRmdirer    = (*stagedFile)(nil)
	_ gofs.NodeRenamer    = (*stagedFile)(nil)
	_ gofs.FileLookuper   = (*stagedFile)(nil)
)

var (
	_ gofs.FileReleaser  = (*stagedHandle)(nil)
	_ gofs.FileReader    = (*stagedHandle)(nil)
	_ gofs.FileWriter    = (*stagedHandle)(nil)
	_ gofs.FileLseeker   = (*stagedHandle)(nil)
	_ gofs.FileFlusher   = (*stagedHandle)(nil)
	_ gofs.FileFsyncer   = (*stagedHandle)(nil)
	_ gofs.FileAllocater = (*stagedHandle)(nil)
	// FUSE passthrough: the kernel reads and writes the file itself
	// (backing.go; not go-fuse's FilePassthroughFder, see backingFS).
	_ backingFder = (*stagedHandle)(nil)
)

// readHandle: a log, a run's input or output file, its result (files.go).
var (
	_ gofs.FileReleaser = (*readHandle)(nil)
	_ gofs.FileReader   = (*readHandle)(nil)
	_ gofs.FileLseeker  = (*readHandle)(nil)
	_ backingFder       = (*readHandle)(nil)
)

var (
	_ gofs.NodeStatfser  = (*stageDir)(nil)
	_ gofs.NodeAccesser  = (*stageDir)(nil)
	_ gofs.NodeGetattrer = (*stageDir)(nil)
	_ gofs.NodeSetattrer = (*stageDir)(nil)
	_ gofs.NodeLookuper  = (*stageDir)(nil)
	_ gofs.NodeOpendirer = (*stageDir)(nil)
	_ gofs.NodeReaddirer = (*stageDir)(nil)
	_ gofs.NodeMkdirer   = (*stageDir)(nil)
	_ gofs.NodeMknoder   = (*stageDir)(nil)
	_ gofs.NodeLinker    = (*stageDir)(nil)
	_ gofs.NodeSymlinker = (*stageDir)(nil)
	_ gofs.NodeCreater   = (*stageDir)(nil)
	_ gofs.NodeUnlinker  = (*stageDir)(nil)
	_ gofs.NodeRmdirer   = (*stageDir)(nil)
	_ gofs.NodeRenamer   = (*stageDir)(nil)
	_ gofs.FileLookuper  = (*stageDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*stepDir)(nil)
	_ gofs.NodeAccesser  = (*stepDir)(nil)
	_ gofs.NodeGetattrer = (*stepDir)(nil)
	_ gofs.NodeLookuper  = (*stepDir)(nil)
	_ gofs.NodeOpendirer = (*stepDir)(nil)
	_ gofs.NodeReaddirer = (*stepDir)(nil)
	_ gofs.NodeUnlinker  = (*stepDir)(nil)
	_ gofs.NodeRmdirer   = (*stepDir)(nil)
	_ gofs.FileLookuper  = (*stepDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*stepsDir)(nil)
	_ gofs.NodeAccesser  = (*stepsDir)(nil)
	_ gofs.NodeGetattrer = (*stepsDir)(nil)
	_ gofs.NodeLookuper  = (*stepsDir)(nil)
	_ gofs.NodeOpendirer = (*stepsDir)(nil)
	_ gofs.NodeReaddirer = (*stepsDir)(nil)
	_ gofs.NodeUnlinker  = (*stepsDir)(nil)
	_ gofs.NodeRmdirer   = (*stepsDir)(nil)
	_ gofs.FileLookuper  = (*stepsDir)(nil)
)

var (
	_ gofs.NodeStatfser  = (*streamFile)(nil)
	_ gofs.NodeAccesser  = (*streamFile)(nil)
	_ gofs.NodeGetattrer = (*streamFile)(nil)
	_ gofs.NodeOpener    = (*streamFile)(nil)
)

var (
	_ gofs.FileReleaser = (*streamHandle)(nil)
	_ gofs.FileReader   = (*streamHandle)(nil)
)

var (
	_ gofs.NodeStatfser  = (*tempFile)(nil)
	_ gofs.NodeAccesser  = (*tempFile)(nil)
	_ gofs.NodeGetattrer = (*tempFile)(nil)
	_ gofs.NodeSetattrer = (*tempFile)(nil)
	_ gofs.NodeOpener    = (*tempFile)(nil)
)

var (
	_ gofs.FileReleaser = (*tempHandle)(nil)
	_ gofs.FileReader   = (*tempHandle)(nil)
	_ gofs.FileWriter   = (*tempHandle)(nil)
	_ gofs.FileFlusher  = (*tempHandle)(nil)
	_ gofs.FileFsyncer  = (*tempHandle)(nil)
)

var (
	_ gofs.NodeStatfser  = (*textFile)(nil)
	_ gofs.NodeAccesser  = (*textFile)(nil)
	_ gofs.NodeGetattrer = (*textFile)(nil)
	_ gofs.NodeOpener    = (*textFile)(nil)
)

var (
	_ gofs.NodeStatfser  = (*waitFile)(nil)
	_ gofs.NodeAccesser  = (*waitFile)(nil)
	_ gofs.NodeGetattrer = (*waitFile)(nil)
	_ gofs.NodeOpener    = (*waitFile)(nil)
)

var (
	_ gofs.FileReader = (*waitHandle)(nil)
)
