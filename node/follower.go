package node

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/follow"
)

// isControlMeta reports whether a node's gossip metadata says it is a
// control node: the candidates a member follows.
func isControlMeta(m cluster.NodeMeta) bool { return m.Role == cluster.RoleControl }

// newFollowing builds both sides of ControlService.Follow for this node:
// the server every node registers (members refuse the call; it also
// serves Enroll, enroll.go) and, on a member, the follower that Run runs
// (d.follower) with the replica age reads report (api.Config.Staleness;
// nil on control nodes).
func (d *Daemon) newFollowing(log *slog.Logger) (staleness func() (time.Duration, bool), srv *controlServer) {
	control := d.cfg.Control
	if !control {
		d.follower = newFollower(d.cfg, d.store, d.members.cl, isControlMeta, d.api, d.removed.set, log)
		staleness = replicaAge(d.follower)
	}
	fs := follow.NewServer(follow.ServerConfig{
		Node: d.cfg.Name, Store: d.store, IsControl: func() bool { return control }, Logger: log.With("component", "follow"),
	})
	return staleness, &controlServer{Server: fs, pki: d.pki, clusterKey: d.cfg.Key, update: d.control.Update, store: d.store, now: time.Now, log: log.With("component", "enroll")}
}

// newFollower makes a member's follower of the control plane
// (node/follow): it streams the desired state from one control node at a
// time into rep, the member's persisted replica, trying the control nodes
// gossip shows (isControl reads a member's role from its gossip metadata)
// and then those it last knew. It dials them over the API's peer
// connections.
func newFollower(cfg Config, rep follow.Replica, cl *cluster.Cluster, isControl func(cluster.NodeMeta) bool, a *apiServer, removed func(), log *slog.Logger) *follow.Follower {
	log = log.With("component", "follow")
	list := openControlList(cfg.DataDir, gossipControls(cl, cfg.Name, isControl), log)
	return follow.New(follow.Config{
		Node:       cfg.Name,
		Replica:    func() follow.Replica { return rep },
		Candidates: list.candidates,
		Dial: func(_ context.Context, c follow.Candidate) (grpc.ClientConnInterface, error) {
			return a.peers.dialAddr(c.Addr)
		},
		ReplicaFailed: func(err error) {
			// The store's OnError (storeFailed) has turned health
			// NOT_SERVING; the replica is re-synced once labd restarts
			// with a working data directory.
			log.Error("the replica cannot be written: stopped following the control plane", "data", cfg.DataDir, "err", err)
		},
		Removed: removed,
		Logger:  log,
	})
}

// replicaAge is api.Config.Staleness on a member: how long ago f last
// heard from the control plane.
func replicaAge(f *follow.Follower) func() (time.Duration, bool) {
	return func() (time.Duration, bool) {
		age, _ := f.Staleness()
		return age, true
	}
}

// fenced is the runtime's Config.Fenced: whether this member stops the
// hosts the leader may have moved (follow.Fence); never on a control node
// or without failover.
func (d *Daemon) fenced() bool { return d.fence != nil && d.fence.Fenced() }
