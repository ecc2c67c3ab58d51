package etcdstore

import (
	"errors"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// dataKey holds the token node name wrote under its data folder, with the
// node's lease: data/<name> -> token.
func (s *Store) dataKey(name string) string { return s.p + "data/" + name }

// ShareDataToken records token, which this node wrote in its data folder,
// and returns the tokens of the other live nodes (name -> token): a node
// that cannot read each of them in its own data folder does not share the
// others' storage. Call it after Join.
func (s *Store) ShareDataToken(token string) (map[string]string, error) {
	if s.sess == nil {
		return nil, errors.New("etcd: data token before Join")
	}
	r, err := s.txn(nil, []clientv3.Op{
		clientv3.OpPut(s.dataKey(s.node), token, clientv3.WithLease(s.sess.Lease())),
		clientv3.OpGet(s.p+"data/", clientv3.WithPrefix()),
	})
	if err != nil {
		return nil, storeErr("record the data folder's token", err)
	}
	out := map[string]string{}
	for _, kv := range r.Responses[1].GetResponseRange().Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.p+"data/")
		if name != s.node {
			out[name] = string(kv.Value)
		}
	}
	return out, nil
}
