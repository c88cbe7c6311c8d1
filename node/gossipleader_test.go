package node

import (
	"testing"

	"github.com/labnet-dev/labnet/node/cluster"
)

func TestLeaderOf(t *testing.T) {
	member := func(name string, state cluster.State, role string, leads bool) cluster.Member {
		return cluster.Member{Name: name, State: state, Meta: cluster.NodeMeta{Role: role, Leader: leads}}
	}
	leading := func(name string, term uint64) cluster.Member {
		return cluster.Member{Name: name, State: cluster.StateAlive, Meta: cluster.NodeMeta{Role: cluster.RoleControl, Leader: true, LeaderTerm: term}}
	}
	ctl, mem := cluster.RoleControl, cluster.RoleMember
	alive, dead := cluster.StateAlive, cluster.StateDead
	for _, tc := range []struct {
		name    string
		members []cluster.Member
		leader  string
		agreed  bool
	}{
		{"one leader", []cluster.Member{member("a", alive, ctl, false), member("b", alive, ctl, true), member("m", alive, mem, false)}, "b", true},
		{"a dead leader does not count", []cluster.Member{member("a", dead, ctl, true), member("b", alive, ctl, true)}, "b", true},
		{"the only control node, flag not spread yet", []cluster.Member{member("a", alive, ctl, false), member("m", alive, mem, false)}, "a", true},
		{"nobody known", []cluster.Member{member("a", alive, ctl, false), member("b", alive, ctl, false), member("m", alive, mem, false)}, "", true},
		// The old leader, killed (or restarted) with its old meta still
		// gossiped, beside the new one: the latest term leads.
		{"two say they lead, the later term wins", []cluster.Member{leading("c", 3), leading("a", 4), member("m", alive, mem, false)}, "a", true},
		{"the later term first", []cluster.Member{leading("a", 4), leading("c", 3)}, "a", true},
		{"two say they lead, no terms", []cluster.Member{member("c", alive, ctl, true), member("a", alive, ctl, true), member("m", alive, mem, false)}, "c", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leader, agreed := leaderOf(tc.members)
			if leader != tc.leader || agreed != tc.agreed {
				t.Errorf("leaderOf = %q, %v; want %q, %v", leader, agreed, tc.leader, tc.agreed)
			}
		})
	}
}
