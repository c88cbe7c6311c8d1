package node

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/control"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
)

// Promote makes node a voter of the control plane (labctl node promote):
// the API's Membership. Only a labd started with --control runs Raft, so a
// member must first be restarted with it; the leader adds such a node by
// itself, and Promote is how an operator adds back a node demoted before.
// Leader only: elsewhere the error names the leader and the API forwards
// the call there.
func (p *controlPlane) Promote(ctx context.Context, node string) error {
	if err := p.leaderOnly(); err != nil {
		return err
	}
	m, ok := p.member(node)
	if !ok || m.State != cluster.StateAlive {
		return status.Errorf(codes.FailedPrecondition, "node %s is not alive: it joins the control plane once it runs", node)
	}
	if m.Meta.Role != cluster.RoleControl || m.Meta.RaftAddr == "" {
		return status.Errorf(codes.FailedPrecondition, "node %s runs as a member: restart its labd with --control, and the leader adds it as a control node", node)
	}
	if _, err := p.ctl.Update(ctx, func(tx *store.Tx) error { lab.SetDemoted(tx, node, false); return nil }); err != nil {
		return err
	}
	return p.ctl.AddVoter(ctx, node, m.Meta.RaftAddr)
}

// Demote removes node from the control plane's voters (labctl node
// demote) and records it, so that the leader does not add it back while
// it still runs Raft. The demoted labd stops serving (health NOT_SERVING)
// until it is restarted without --control, as a member. The last voter
// cannot be demoted. Leader only, as Promote.
func (p *controlPlane) Demote(ctx context.Context, node string) error {
	if err := p.leaderOnly(); err != nil {
		return err
	}
	voters, found := 0, false
	for _, s := range p.ctl.Servers() {
		if s.Voter {
			voters++
			found = found || s.Name == node
		}
	}
	switch {
	case !found:
		return status.Errorf(codes.FailedPrecondition, "node %s is not a control node", node)
	case voters == 1:
		return status.Errorf(codes.FailedPrecondition, "node %s is the only control node: promote another one first", node)
	}
	if _, err := p.ctl.Update(ctx, func(tx *store.Tx) error { lab.SetDemoted(tx, node, true); return nil }); err != nil {
		return err
	}
	return p.ctl.RemoveServer(ctx, node)
}

// leaderOnly is nil on the leader, and otherwise the error that sends the
// call to the leader (a member names the leader gossip reports).
func (p *controlPlane) leaderOnly() error {
	if p.ctl != nil && p.ctl.IsLeader() {
		return nil
	}
	leader := ""
	if p.ctl != nil {
		leader = p.ctl.Leader()
	}
	if leader == "" {
		leader, _ = p.gossipLeader()
	}
	return &control.NotLeaderError{Leader: leader}
}

// member is node as gossip lists it.
func (p *controlPlane) member(node string) (cluster.Member, bool) {
	for _, m := range p.cl.Members() {
		if m.Name == node {
			return m, true
		}
	}
	return cluster.Member{}, false
}

// checkRemoved turns a control node that is no longer in the Raft
// configuration it was part of (demoted) into one that says so: health
// NOT_SERVING, with one line saying how to go on.
func (p *controlPlane) checkRemoved() {
	if p.ctl == nil || p.removed {
		return
	}
	in := false
	for _, s := range p.ctl.Servers() {
		in = in || s.Name == p.name
	}
	if in {
		p.wasVoter = true
		return
	}
	// Out of the configuration: removed if this process saw itself in it,
	// or if the demotion reached its state while it ran (the removal can
	// follow the addition before run looked).
	at, demoted := lab.DemotedAt(p.st, p.name)
	if p.wasVoter || demoted && at > p.startRev {
		p.removed = true
		// Gossip says it runs no Raft any more, so a promote asks for a
		// restart with --control instead of adding a voter that cannot
		// answer (which would stall a small control plane's quorum).
		p.publish("publishing the demotion in gossip", func(m *cluster.NodeMeta) {
			m.Role, m.RaftAddr, m.Leader = cluster.RoleMember, "", false
		})
		p.log.Error("this node was removed from the control plane (demoted): health NOT_SERVING; restart labd without --control to run it as a member")
		p.notServing()
	}
}
