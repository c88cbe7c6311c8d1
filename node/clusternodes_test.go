package node

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestClusterNodesRoleAndLeader: role and leadership come from the gossip
// metadata, and a metadata update is signalled to Watch.
func TestClusterNodesRoleAndLeader(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	meta := cluster.NodeMeta{APIAddr: "127.0.0.1:7700", Role: cluster.RoleMember}
	cl, err := cluster.New(cluster.Config{Name: "n1", BindAddr: "127.0.0.1:0", Meta: meta, Local: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer cl.Shutdown()
	cn := &clusterNodes{cl: cl, st: st, name: "n1", started: time.Now()}
	watch, unwatch := cn.Watch()
	defer unwatch()
	nodes := cn.Nodes()
	if len(nodes) != 1 || nodes[0].GetRole() != labv1.NodeRole_NODE_ROLE_MEMBER || nodes[0].GetLeader() {
		t.Fatalf("nodes: %v", nodes)
	}
	meta.Role, meta.Leader = cluster.RoleControl, true
	if err := cl.UpdateMeta(meta); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		n := cn.Nodes()[0]
		if n.GetRole() == labv1.NodeRole_NODE_ROLE_CONTROL && n.GetLeader() {
			break
		}
		select {
		case <-watch:
		case <-deadline:
			t.Fatalf("node after UpdateMeta: %v", n)
		}
	}
}

// TestClusterNodesIdentity: a node's kind, owner, certificate expiry and
// removal come from its identity record in the replica (what
// get nodes and its --watch show), read again on every call.
func TestClusterNodesIdentity(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cl, err := cluster.New(cluster.Config{Name: "n1", BindAddr: "127.0.0.1:0", Meta: cluster.NodeMeta{Role: cluster.RoleMember}, Local: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer cl.Shutdown()
	cn := &clusterNodes{cl: cl, st: st, name: "n1", started: time.Now()}
	if n := cn.Nodes()[0]; n.GetKind() != "" || n.GetOwner() != "" || n.GetRemoved() || n.GetCertificateExpireTime() != nil {
		t.Fatalf("without a record: %v", n)
	}
	expires := time.Date(2027, 12, 4, 0, 0, 0, 0, time.UTC)
	put := func(id lab.NodeIdentity) {
		t.Helper()
		if _, err := st.Update(func(tx *store.Tx) error { return lab.PutNodeIdentity(tx, id) }); err != nil {
			t.Fatal(err)
		}
	}
	put(lab.NodeIdentity{Name: "n1", Kind: "member", Owner: "alice", NotAfter: expires})
	if n := cn.Nodes()[0]; n.GetKind() != "member" || n.GetOwner() != "alice" || n.GetRemoved() || !n.GetCertificateExpireTime().AsTime().Equal(expires) {
		t.Fatalf("enrolled: %v", n)
	}
	put(lab.NodeIdentity{Name: "n1", Kind: "member", Owner: "alice", NotAfter: expires, Removed: true})
	if n := cn.Nodes()[0]; !n.GetRemoved() || n.GetOwner() != "alice" {
		t.Fatalf("removed: %v", n)
	}
}
