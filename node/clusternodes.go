package node

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// clusterNodes reports the cluster's members as lab.v1 nodes.
type clusterNodes struct {
	cl      *cluster.Cluster
	st      *store.Store
	name    string
	started time.Time
}

func (c *clusterNodes) Nodes() []*labv1.Node {
	all, _ := lab.ReadAll(c.st) // a record that does not decode counts nowhere
	counts := lab.HostsPerNode(all.Hosts)
	states := map[cluster.State]labv1.NodeState{
		cluster.StateAlive: labv1.NodeState_NODE_STATE_ALIVE, cluster.StateSuspect: labv1.NodeState_NODE_STATE_SUSPECT,
		cluster.StateDead: labv1.NodeState_NODE_STATE_DEAD, cluster.StateLeft: labv1.NodeState_NODE_STATE_LEFT,
	}
	roles := map[string]labv1.NodeRole{cluster.RoleControl: labv1.NodeRole_NODE_ROLE_CONTROL, cluster.RoleMember: labv1.NodeRole_NODE_ROLE_MEMBER}
	ids := map[string]lab.NodeIdentity{}
	for _, id := range lab.ListNodeIdentities(c.st) {
		ids[id.Name] = id
	}
	var out []*labv1.Node
	for _, m := range c.cl.Members() {
		n := &labv1.Node{
			Name: lab.NodeName(m.Name), State: states[m.State], ApiAddress: m.Meta.APIAddr,
			GossipAddress: m.Addr, OverlayAddress: m.Meta.OverlayAddr, Version: m.Meta.Version,
			HostCount: int32(counts[m.Name]), Role: roles[m.Meta.Role], Leader: m.Meta.Leader,
		}
		if id, ok := ids[m.Name]; ok {
			n.Kind, n.Owner, n.Removed = id.Kind, id.Owner, id.Removed
			if !id.NotAfter.IsZero() {
				n.CertificateExpireTime = timestamppb.New(id.NotAfter)
			}
		}
		switch {
		case m.Name == c.name:
			n.StartTime = timestamppb.New(c.started)
		case m.Meta.Started != 0:
			n.StartTime = timestamppb.New(time.Unix(m.Meta.Started, 0))
		}
		out = append(out, n)
	}
	return out
}

// Watch signals membership changes (cluster.WatchMembers).
func (c *clusterNodes) Watch() (<-chan struct{}, func()) { return c.cl.WatchMembers() }
