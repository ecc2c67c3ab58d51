// Package etcdtest starts a real etcd cluster for tests: one member process
// per node on loopback, built from the etcd server module pinned in go.mod,
// so that a test can kill -9 a member and start it again.
package etcdtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a running etcd cluster; Stop (registered with t.Cleanup) ends it.
type Cluster struct {
	dir     string
	bin     string
	initial string
	members []*member
}

type member struct {
	name, dir, peer, client string
	cmd                     *osexec.Cmd
	done                    chan struct{}
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// memberBinary builds the member launcher once per test binary.
func memberBinary() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jobfs-etcd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "etcd-member")
		cmd := osexec.Command(goTool(), "build", "-o", buildBin, "github.com/jobfs/jobfs/jobs/etcdstore/etcdtest/member")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build the etcd member: %v: %s", err, out)
		}
	})
	return buildBin, buildErr
}

// Cleanup removes the built member binary; call it from TestMain after m.Run.
func Cleanup() {
	if buildBin != "" {
		_ = os.RemoveAll(filepath.Dir(buildBin)) // a temp folder of ours; nothing else to do on failure
	}
}

// goTool is the go command running this test's build.
func goTool() string {
	if p, err := osexec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// freePorts reserves n loopback ports by listening and closing.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close() // freeing the port is the point
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Start starts an n-member cluster and waits until it serves.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := memberBinary()
	if err != nil {
		t.Fatal(err)
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{dir: t.TempDir(), bin: bin}
	var initial []string
	for i := 0; i < n; i++ {
		m := &member{
			name:   fmt.Sprintf("m%d", i),
			peer:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			client: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		m.dir = filepath.Join(c.dir, m.name)
		initial = append(initial, m.name+"="+m.peer)
		c.members = append(c.members, m)
	}
	c.initial = strings.Join(initial, ",")
	t.Cleanup(c.Stop)
	for i := range c.members {
		if err := c.start(i, "new"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.waitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *Cluster) start(i int, state string) error {
	m := c.members[i]
	logf, err := os.OpenFile(filepath.Join(c.dir, m.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = logf.Close() }() // the child holds its own copy
	cmd := osexec.Command(c.bin, "-name", m.name, "-data-dir", m.dir, "-peer", m.peer, "-client", m.client,
		"-initial-cluster", c.initial, "-state", state)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
		}
		_ = cmd.Wait() // the exit is what done reports
		close(m.done)
	}()
	return nil
}

// waitHealthy waits until a quorum answers a linearizable read.
func (c *Cluster) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: time.Second, Logger: zap.NewNop()})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = cli.Get(ctx, "health")
			cancel()
			_ = cli.Close() // a probe client
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd cluster not healthy after %s: %v (logs in %s)", limit, err, c.dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.client)
	}
	return eps
}

// Client returns a client of the whole cluster, closed at cleanup.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(ClientConfig(c.Endpoints()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() }) // nothing to do on failure at cleanup
	return cli
}

// ClientConfig is a client configuration for endpoints that keeps the
// client's retry warnings out of the test output.
func ClientConfig(endpoints []string) clientv3.Config {
	return clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()}
}

// Kill ends member i with SIGKILL, as a crash.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill() // already gone is fine
	<-m.done
	m.cmd = nil
}

// Restart starts member i again on its data after Kill.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	if err := c.start(i, "existing"); err != nil {
		t.Fatal(err)
	}
	if err := c.waitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// Stop ends every member: SIGTERM, then SIGKILL after 5 s.
func (c *Cluster) Stop() {
	for _, m := range c.members {
		if m.cmd == nil {
			continue
		}
		_ = m.cmd.Process.Signal(syscall.SIGTERM) // gone already is fine
		select {
		case <-m.done:
		case <-time.After(5 * time.Second):
			_ = m.cmd.Process.Kill() // it would not stop
			<-m.done
		}
		m.cmd = nil
	}
}

// Available reports why no member can be started here (the member binary
// does not build), nil when one can: a test may skip, saying why.
func Available() error {
	_, err := memberBinary()
	return err
}
