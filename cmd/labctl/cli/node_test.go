package cli

import "testing"

func TestNodePromoteDemote(t *testing.T) {
	runCases(t, []cliCase{
		{name: "node_promote", args: []string{"node", "promote", "n2"}, golden: true, calls: []string{"PromoteNode nodes/n2"}},
		{name: "node_demote", args: []string{"node", "demote", "nodes/n1"}, golden: true, calls: []string{"DemoteNode nodes/n1"}},
		{name: "node_promote_unknown", args: []string{"node", "promote", "n9"}, code: 1,
			stderr: "error: node \"nodes/n9\" not found\n", calls: []string{"PromoteNode nodes/n9"}},
		{name: "node_promote_refused", args: []string{"node", "promote", "n3"}, code: 1,
			stderr: "error: node nodes/n3 has left: it cannot vote\n"},
		{name: "node_promote_no_node", args: []string{"node", "promote"}, code: 1,
			stderr: "error: labctl node promote needs NODE (got 0 arguments)\n", calls: []string{}},
		{name: "node_demote_two", args: []string{"node", "demote", "n1", "n2"}, code: 1,
			stderr: "error: labctl node demote needs NODE (got 2 arguments)\n", calls: []string{}},
		{name: "complete_node_promote", args: []string{"__complete", "node", "promote", ""}, golden: true, stderr: compNoFile},
	})
}
