package etcdstore

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/etcdstore/etcdtest"
	"github.com/jobfs/jobfs/jobs/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	etcdtest.Cleanup()
	os.Exit(code)
}

// TestEtcdStoreContract runs the Store contract against a real 3-member
// etcd cluster; each store gets its own prefix, as separate trees would.
func TestEtcdStoreContract(t *testing.T) {
	c := etcdtest.Start(t, 3)
	var n atomic.Int64
	open := func(t *testing.T, prefix string) jobs.Store {
		cli, err := clientv3.New(etcdtest.ClientConfig(c.Endpoints()))
		if err != nil {
			t.Fatal(err)
		}
		s := New(Config{Client: cli, OwnClient: true, Prefix: prefix, Instance: jobs.Instance{ID: "test"}})
		t.Cleanup(func() { _ = s.Close() }) // closing twice is a no-op
		return s
	}
	storetest.StoreContract(t,
		func(t *testing.T) jobs.Store { return open(t, fmt.Sprintf("/jobfs-test/%d/", n.Add(1))) },
		func(t *testing.T, s jobs.Store) jobs.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, s.(*Store).p)
		})
}
