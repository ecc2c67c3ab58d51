package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The listing (issue 20): listing an owner's jobs (`ls MOUNT`, and the top
// folder's mtime, its newest job's creation, asked by the first stat of the
// mount) reads one bucket of small records in name order, instead of each
// job's bucket and JSON record (100,000 of each: a second at every start).
//
//	listing/<owner>/<name> -> <job id> 0x00 <created, time.MarshalBinary>
//	created/<owner>/<be64 created>/<job id> -> <created, time.MarshalBinary>
//	                                   the owner's jobs by creation: the
//	                                   newest is the last key of its prefix
//	daemon/listing -> listingVersion   both are complete
//
// They are written in the same commit as names/<owner>/<name>, whose jobs
// they mirror (CreateJob, RenameJob, DeleteJob). A store without daemon/listing
// (made by an older jobfs) gets it built from every job's record the first
// time it is opened: one read of the jobs, not of their runs.
var (
	bucketListing = []byte("listing")
	bucketCreated = []byte("created")
	keyListing    = []byte("listing")
)

// listingVersion is stored at daemon/listing once the listing is complete.
const listingVersion = "listing 2"

// listEntry encodes job j's listing record.
func listEntry(j Job) ([]byte, error) {
	t, err := j.Created.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	v := make([]byte, 0, len(j.ID)+1+len(t))
	v = append(v, j.ID...)
	v = append(v, 0)
	return append(v, t...), nil
}

// readListEntry decodes the record of owner's job listed under key k
// (owner/name).
func readListEntry(owner Owner, k, v []byte) (Job, error) {
	id, t, ok := bytes.Cut(v, []byte{0})
	if !ok {
		return Job{}, fmt.Errorf("decode listing of job %q: no id", k)
	}
	j := Job{ID: string(id), Owner: owner}
	if _, name, ok := bytes.Cut(k, []byte{'/'}); ok {
		j.Name = string(name)
	}
	return j, decodeCreated(&j.Created, k, t)
}

// createdKey is job j's key in created/: the owner, then the creation
// time as a big-endian number that sorts as the times do (sign bit
// flipped), then the id.
func createdKey(j Job) []byte {
	k := nameKey(j.Owner, "")
	k = binary.BigEndian.AppendUint64(k, uint64(j.Created.UnixNano())^1<<63)
	return append(k, j.ID...)
}

// listJob records job j in the listing, in the commit that names it; made
// is false for a rename (created/ holds it already).
func listJob(tx *bolt.Tx, j Job, made bool) error {
	v, err := listEntry(j)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketListing).Put(nameKey(j.Owner, j.Name), v); err != nil {
		return err
	}
	if !made {
		return nil
	}
	_, t, _ := bytes.Cut(v, []byte{0})
	return tx.Bucket(bucketCreated).Put(createdKey(j), t)
}

// unlistJob removes job j from the listing; gone is false for a rename.
func unlistJob(tx *bolt.Tx, j Job, gone bool) error {
	if err := tx.Bucket(bucketListing).Delete(nameKey(j.Owner, j.Name)); err != nil {
		return err
	}
	if !gone {
		return nil
	}
	return tx.Bucket(bucketCreated).Delete(createdKey(j))
}

// NewestJob is when owner's newest job was created (zero without jobs),
// from created/: one key, however many jobs the owner has. The top
// folder's mtime is this (or a later rename or delete).
func (s *Store) NewestJob(owner Owner) (time.Time, error) {
	if t, ok := s.jobs.newestOf(owner); ok {
		return t, nil
	}
	var t time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := nameKey(owner, "")
		c := tx.Bucket(bucketCreated).Cursor()
		// The first key past the prefix ("1000/" ends before "10000":
		// '/' and '0' are neighbours), then one back: the prefix's last.
		past := append(prefix[:len(prefix)-1:len(prefix)-1], '0')
		k, _ := c.Seek(past)
		var v []byte
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		if k == nil || !hasPrefix(k, prefix) {
			return nil
		}
		return decodeCreated(&t, k, v)
	})
	return t, err
}

// newestOf is the latest creation among list.
func newestOf(list []Job) time.Time {
	var t time.Time
	for _, j := range list {
		if j.Created.After(t) {
			t = j.Created
		}
	}
	return t
}

// decodeCreated decodes a creation time as readJob's JSON gives it.
func decodeCreated(t *time.Time, k, v []byte) error {
	if err := t.UnmarshalBinary(v); err != nil {
		return fmt.Errorf("decode creation time of %q: %w", k, err)
	}
	if _, off := t.Zone(); off == 0 {
		*t = t.UTC() // as the record's JSON decodes: written "Z"
	}
	return nil
}

// ensureListing builds the listing from every job's record when the store
// has none yet, once.
func ensureListing(tx *bolt.Tx) error {
	d := tx.Bucket(bucketDaemon)
	if string(d.Get(keyListing)) == listingVersion {
		return nil
	}
	for _, name := range [][]byte{bucketListing, bucketCreated} {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	err := tx.Bucket(bucketNames).ForEach(func(_, id []byte) error {
		b, err := jobBucket(tx, string(id))
		if err != nil {
			return err
		}
		j, err := readJob(b)
		if err != nil {
			return err
		}
		return listJob(tx, j, true)
	})
	if err != nil {
		return err
	}
	return d.Put(keyListing, []byte(listingVersion))
}

// JobNames lists owner's jobs' names and ids, sorted by name, from the kept
// list or the listing: no record is decoded and no Job made, and the
// strings are cut from one (a listing of 100,000 jobs is a few
// allocations, where a garbage collection would scan 200,000).
func (s *Store) JobNames(owner Owner) (names, ids []string, err error) {
	if list, ok := s.jobs.get(owner); ok {
		names, ids = make([]string, len(list)), make([]string, len(list))
		for i, j := range list {
			names[i], ids[i] = j.Name, j.ID
		}
		return names, ids, nil
	}
	size := s.jobs.size(owner)
	text := make([]byte, 0, 20*size)
	var cuts [][3]int // job i's id and name in text
	if size > 0 {
		cuts = make([][3]int, 0, size+size/8)
	}
	prefix := nameKey(owner, "")
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketListing).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			id, _, ok := bytes.Cut(v, []byte{0})
			if !ok {
				return fmt.Errorf("decode listing of job %q: no id", k)
			}
			start := len(text)
			text = append(text, id...)
			mid := len(text)
			text = append(text, k[len(prefix):]...)
			cuts = append(cuts, [3]int{start, mid, len(text)})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	s.jobs.sized(owner, len(cuts))
	all := string(text)
	names, ids = make([]string, len(cuts)), make([]string, len(cuts))
	for i, c := range cuts {
		ids[i], names[i] = all[c[0]:c[1]], all[c[1]:c[2]]
	}
	return names, ids, nil
}

// WarmJobs reads owner's jobs into memory in the background, for the
// stats and lookups that follow a listing (ls -l, a shell's completion). A
// listing asks for it once its names are served, not while: reading
// 100,000 records beside the listing took 40% of the daemon's CPU during
// the first `ls` of them, on 2 cores.
func (s *Store) WarmJobs(owner Owner) { s.warm(owner) }
