// Command member runs one real etcd server (go.etcd.io/etcd/server/v3/embed)
// for jobfs's tests: the etcd module cannot be `go install`ed (it has replace
// directives) and Debian ships only etcd 3.4, so the harness builds this.
// It serves until SIGTERM or SIGINT; SIGKILL is the crash the tests want.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	var (
		name    = flag.String("name", "", "member name")
		dir     = flag.String("data-dir", "", "data folder")
		peer    = flag.String("peer", "", "peer URL, http://127.0.0.1:PORT")
		client  = flag.String("client", "", "client URL, http://127.0.0.1:PORT")
		cluster = flag.String("initial-cluster", "", "name=peerURL,...")
		state   = flag.String("state", embed.ClusterStateFlagNew, "new or existing")
	)
	flag.Parse()
	if err := run(*name, *dir, *peer, *client, *cluster, *state); err != nil {
		fmt.Fprintln(os.Stderr, "member:", err)
		os.Exit(1)
	}
}

func run(name, dir, peer, client, cluster, state string) error {
	pu, err := url.Parse(peer)
	if err != nil {
		return err
	}
	cu, err := url.Parse(client)
	if err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = name, dir
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.InitialCluster, cfg.ClusterState = cluster, state
	cfg.InitialClusterToken = "jobfs-test"
	// Short ticks: a test's leader election takes ~100 ms, not seconds.
	cfg.TickMs, cfg.ElectionMs = 20, 200
	cfg.LogLevel = "warn"
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = embed.CompactorModeRevision, "10000"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-e.Server.ReadyNotify():
		fmt.Println("ready")
	case err := <-e.Err():
		return err
	case <-sig:
		return nil
	}
	select {
	case err := <-e.Err():
		return err
	case <-sig:
		return nil
	}
}
