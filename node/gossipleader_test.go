package node

import (
	"testing"

	"github.com/labnet-dev/labnet/node/cluster"
)

func TestLeaderOf(t *testing.T) {
	member := func(name string, state cluster.State, role string, leads bool) cluster.Member {
		return cluster.Member{Name: name, State: state, Meta: cluster.NodeMeta{Role: role, Leader: leads}}
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
		// gossiped, beside the new one: not agreed.
		{"two say they lead", []cluster.Member{member("c", alive, ctl, true), member("a", alive, ctl, true), member("m", alive, mem, false)}, "c", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leader, agreed := leaderOf(tc.members)
			if leader != tc.leader || agreed != tc.agreed {
				t.Errorf("leaderOf = %q, %v; want %q, %v", leader, agreed, tc.leader, tc.agreed)
			}
		})
	}
}
