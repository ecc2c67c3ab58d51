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
)

var bucketAfter = []byte(domain.BucketAfter)

const bucketEnv = domain.BucketEnv
