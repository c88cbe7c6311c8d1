package node

import "github.com/labnet-dev/labnet/node/cluster"

// leaderOf is the control plane's leader as gossip tells it: the live node
// whose meta says it leads; failing that, the only live control node (a
// leader's flag takes a gossip round to spread); "" when neither is known.
//
// agreed is false when more than one live node says it leads; leader is
// then the first of them. That happens for a second or two after the
// leader is killed: gossip still shows it alive, with its old flag and
// addresses, beside the leader elected since, and the same goes for a
// leader killed and restarted until its new meta (no longer leading, a new
// API address) spreads. Forwarding a write to the wrong one fails with
// "cannot be reached", so a member's write waits for gossip to agree.
func leaderOf(members []cluster.Member) (leader string, agreed bool) {
	var leaders, control []string
	for _, m := range members {
		if m.State != cluster.StateAlive {
			continue
		}
		if m.Meta.Leader {
			leaders = append(leaders, m.Name)
		}
		if m.Meta.Role == cluster.RoleControl {
			control = append(control, m.Name)
		}
	}
	switch {
	case len(leaders) > 0:
		return leaders[0], len(leaders) == 1
	case len(control) == 1:
		return control[0], true
	}
	return "", true
}
