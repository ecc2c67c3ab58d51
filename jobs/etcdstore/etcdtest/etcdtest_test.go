package etcdtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// TestClusterSurvivesMemberKill: a 3-member cluster keeps serving writes
// with one member killed, and the member rejoins with everything.
func TestClusterSurvivesMemberKill(t *testing.T) {
	c := Start(t, 3)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "a", "1"); err != nil {
		t.Fatal(err)
	}
	c.Kill(1)
	for i := 0; i < 20; i++ {
		if err := putRetrying(ctx, cli, fmt.Sprintf("k%d", i)); err != nil {
			t.Fatalf("put with a member down: %v", err)
		}
	}
	c.Restart(t, 1)
	one, err := clientv3.New(ClientConfig(c.Endpoints()[1:2]))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = one.Close() }()
	r, err := one.Get(ctx, "k", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) != 20 {
		t.Fatalf("restarted member sees %d keys, want 20", len(r.Kvs))
	}
}

// TestCompareAndSwapOneWinner: ten claimers of one key, exactly one wins.
func TestCompareAndSwapOneWinner(t *testing.T) {
	c := Start(t, 3)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := 0; round < 5; round++ {
		key := fmt.Sprintf("claim/%d", round)
		var mu sync.Mutex
		wins := 0
		var wg sync.WaitGroup
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
					Then(clientv3.OpPut(key, fmt.Sprint(i))).Commit()
				if err != nil {
					t.Error(err)
					return
				}
				if r.Succeeded {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d winners", round, wins)
		}
	}
}

// putRetrying retries a put that failed while a new leader was elected (the
// killed member may have led): etcd says so with a timeout error.
func putRetrying(ctx context.Context, cli *clientv3.Client, key string) error {
	for {
		_, err := cli.Put(ctx, key, "v")
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
