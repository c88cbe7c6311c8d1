package node

import "github.com/labnet-dev/labnet/node/cluster"

// leaderOf is the control plane's leader as gossip tells it: the live node
// whose meta says it leads; failing that, the only live control node (a
// leader's flag takes a gossip round to spread); "" when neither is known.
//
// For a second or two after the leader is killed, gossip still shows it
// alive and leading beside the leader elected since (and a leader killed
// and restarted keeps its old meta until its new one spreads). Of several
// live nodes that say they lead, the one leading in the latest Raft term
// is the leader: raft elects one leader per term. agreed is false when
// that does not decide (nodes of a version that does not publish the
// term): leader is then the first of them, and a member's write waits for
// gossip to agree.
func leaderOf(members []cluster.Member) (leader string, agreed bool) {
	var control []string
	var term uint64
	tie := false
	for _, m := range members {
		if m.State != cluster.StateAlive {
			continue
		}
		if m.Meta.Role == cluster.RoleControl {
			control = append(control, m.Name)
		}
		if !m.Meta.Leader {
			continue
		}
		switch {
		case leader == "" || m.Meta.LeaderTerm > term:
			leader, term, tie = m.Name, m.Meta.LeaderTerm, false
		case m.Meta.LeaderTerm == term:
			tie = true
		}
	}
	switch {
	case leader != "":
		return leader, !tie
	case len(control) == 1:
		return control[0], true
	}
	return "", true
}
