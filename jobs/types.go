package jobs

import "github.com/jobfs/jobfs/jobs/domain"

// The records every part of jobs shares live in package domain (so that a
// Store in a package of its own can use them); these are their names here.
type (
	Owner       = domain.Owner
	Job         = domain.Job
	Status      = domain.Status
	Trigger     = domain.Trigger
	Run         = domain.Run
	Step        = domain.Step
	Usage       = domain.Usage
	RunID       = domain.RunID
	RunRef      = domain.RunRef
	JobSnapshot = domain.JobSnapshot
	AfterResult = domain.AfterResult
	Change      = domain.Change
)

// Run statuses, as Horus names them.
const (
	Pending   = domain.Pending
	Running   = domain.Running
	Completed = domain.Completed
	Failed    = domain.Failed
	Timeout   = domain.Timeout
	Cancelled = domain.Cancelled
	Skipped   = domain.Skipped
)

// Triggers.
const (
	Manual   = domain.Manual
	Schedule = domain.Schedule
	Retry    = domain.Retry
	Hook     = domain.Hook
)
