package boltstore

import "github.com/jobfs/jobfs/jobs/domain"

// The records and keys the store keeps, by the names jobs gives them.
type (
	Owner       = domain.Owner
	Job         = domain.Job
	Run         = domain.Run
	RunID       = domain.RunID
	RunRef      = domain.RunRef
	JobSnapshot = domain.JobSnapshot
	AfterResult = domain.AfterResult
	Change      = domain.Change
	Instance    = domain.Instance
	Status      = domain.Status
	Step        = domain.Step
	Usage       = domain.Usage
)

var (
	ErrNotFound = domain.ErrNotFound
	ErrExists   = domain.ErrExists
	bucketAfter = []byte(domain.BucketAfter)
	bucketEnv   = domain.BucketEnv
	TimeRuns    = domain.TimeRuns
)
