package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/etcdstore"
)

// clusterFlags are the flags of a node of a cluster: one job tree kept in
// etcd, mounted on many machines (README "One tree on many machines").
type clusterFlags struct {
	store     string        // etcd://h1:2379,h2:2379; empty: bbolt in --state
	ca        string        // --etcd-ca: the CA of the etcd servers
	cert, key string        // --etcd-cert, --etcd-key: this node's client certificate (mTLS)
	prefix    string        // --etcd-prefix: the cluster's keys
	lease     time.Duration // --etcd-lease: past it without renewal, the node is lost
	data      string        // --data: run files, on storage every node shares
	node      string        // --node: this daemon's name (default the host name)
	noExecute bool          // --no-execute: views and triggers only
}

func clusterFlagSet(f *clusterFlags, fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", "", "keep jobs and runs in etcd: `etcd://host:port,host:port` (every node of a team mounts one tree; needs --data); + separates endpoints too, as in the -o form: store=etcd://h1:2379+h2:2379")
	fs.StringVar(&f.ca, "etcd-ca", "", "CA certificate `file` of the etcd servers (with --etcd-cert and --etcd-key: mTLS)")
	fs.StringVar(&f.cert, "etcd-cert", "", "this node's etcd client certificate `file`")
	fs.StringVar(&f.key, "etcd-key", "", "this node's etcd client key `file`")
	fs.StringVar(&f.prefix, "etcd-prefix", "/jobfs/", "etcd key `prefix` of the tree (the node's RBAC role needs readwrite on it only)")
	fs.DurationVar(&f.lease, "etcd-lease", 10*time.Second, "etcd lease of this node: a node that does not renew it for this long is lost (its steps stop, its runs end FAILED on the others)")
	fs.StringVar(&f.data, "data", "", "run files `dir` (logs, input, output) with --store: storage every node shares, mounted at the same path")
	fs.StringVar(&f.node, "node", "", "this node's `name` in the cluster, unique among live nodes (default the host name)")
	fs.BoolVar(&f.noExecute, "no-execute", false, "with --store: never execute runs here (a laptop that views and triggers)")
}

// keyFingerprint identifies the master key without revealing it: the
// SHA-256 of an HMAC of a fixed label under the key.
func keyFingerprint(key []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("jobfs cluster master key fingerprint v1"))
	sum := sha256.Sum256(mac.Sum(nil))
	return hex.EncodeToString(sum[:16])
}

// openCluster joins the cluster of f.store, or returns nil without one.
// It refuses to start, saying why, when the data folder is missing or not
// shared with the live nodes, the master key differs or the node name is
// taken.
func openCluster(f clusterFlags, masterKey []byte) (*etcdstore.Store, error) {
	if f.store == "" {
		if f.data != "" || f.noExecute {
			return nil, errors.New("--data and --no-execute need --store etcd://...: without it the tree is this machine's alone")
		}
		return nil, nil
	}
	eps, ok := strings.CutPrefix(f.store, "etcd://")
	endpoints := storeEndpoints(eps)
	if !ok || len(endpoints) == 0 {
		return nil, fmt.Errorf("--store %q: write etcd://host:port[,host:port...] (or + between endpoints)", f.store)
	}
	if f.data == "" {
		return nil, errors.New("--store etcd:// needs --data DIR: run files (logs, input, output) live there, on storage every node shares")
	}
	if f.node == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("--node: no host name to default to (%v): give --node NAME", err)
		}
		f.node = h
	}
	if strings.ContainsAny(f.node, "/ \t\n") {
		return nil, fmt.Errorf("--node %q: a node name has no slash or space", f.node)
	}
	cfg := clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second}
	if f.ca != "" || f.cert != "" || f.key != "" {
		if f.cert == "" || f.key == "" {
			return nil, errors.New("mTLS needs both --etcd-cert and --etcd-key (and --etcd-ca for the servers' CA)")
		}
		tlsCfg, err := transport.TLSInfo{CertFile: f.cert, KeyFile: f.key, TrustedCAFile: f.ca}.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcd TLS: %w", err)
		}
		cfg.TLS = tlsCfg
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s: %w", eps, err)
	}
	s := etcdstore.New(etcdstore.Config{Client: cli, OwnClient: true, Prefix: f.prefix,
		Instance: jobs.Instance{ID: "node-" + f.node}})
	if err := joinCluster(s, f, masterKey); err != nil {
		_ = s.Close() // the join's error is the one to report
		return nil, err
	}
	return s, nil
}

// storeEndpoints splits the endpoints of --store at commas or pluses: the
// mount helper's -o form separates options with commas, so its store=
// option writes etcd://h1:2379+h2:2379 (a host name has no +).
func storeEndpoints(eps string) []string {
	var out []string
	for _, e := range strings.FieldsFunc(eps, func(r rune) bool { return r == ',' || r == '+' }) {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func joinCluster(s *etcdstore.Store, f clusterFlags, masterKey []byte) error {
	if err := s.Join(f.node, f.lease); err != nil {
		if errors.Is(err, etcdstore.ErrNodeTaken) {
			return fmt.Errorf("node name %q is taken by a live jobfs node: give this one another --node", f.node)
		}
		return err
	}
	if err := s.CheckKeyFingerprint(keyFingerprint(masterKey)); err != nil {
		return err
	}
	return checkSharedData(s, f.data, f.node)
}

// checkSharedData writes a token under data and compares the live nodes'
// tokens with what their files under data hold here: a node that cannot
// see them does not share their storage, and its runs' files would be
// invisible to the others.
func checkSharedData(s *etcdstore.Store, data, node string) error {
	dir := filepath.Join(data, "nodes")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--data %s: %w", data, err)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	token := hex.EncodeToString(b)
	if err := os.WriteFile(filepath.Join(dir, node), []byte(token), 0o600); err != nil {
		return fmt.Errorf("--data %s: write this node's token: %w", data, err)
	}
	others, err := s.ShareDataToken(token)
	if err != nil {
		return err
	}
	for name, want := range others {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			return fmt.Errorf("--data %s is not the storage live node %s uses (its token %s is not there): mount the shared folder at --data on every node", data, name, filepath.Join(dir, name))
		}
	}
	return nil
}
