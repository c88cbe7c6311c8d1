package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

func TestNodeInviteRemove(t *testing.T) {
	runCases(t, []cliCase{
		{name: "node_invite", args: []string{"node", "invite", "alice-laptop", "--owner", "alice"},
			golden: true, calls: []string{`CreateNodeInvite alice-laptop owner="alice" control=false ttl=0s`}},
		{name: "node_invite_control_ttl", args: []string{"node", "invite", "nodes/assistant", "--control", "--ttl", "2h"},
			golden: true, calls: []string{`CreateNodeInvite assistant owner="" control=true ttl=2h0m0s`}},
		{name: "node_invite_unknown_owner", args: []string{"node", "invite", "x", "--owner", "nobody"}, code: 1,
			stderr: "error: user \"nobody\" not found: the owner must be an existing user (labctl user add)\n"},
		{name: "node_invite_no_name", args: []string{"node", "invite"}, code: 1,
			stderr: "error: labctl node invite needs NAME (got 0 arguments)\n", calls: []string{}},
		{name: "node_remove", args: []string{"node", "remove", "n2"},
			golden: true, calls: []string{"RemoveNode nodes/n2"}},
		{name: "node_remove_unknown", args: []string{"node", "remove", "n9"}, code: 1,
			stderr: "error: node \"nodes/n9\" not found\n", calls: []string{"RemoveNode nodes/n9"}},
	})
}

// TestNodeInviteTokenFile: --token-file writes the token alone, mode
// 0600, and the printed command reads it from there: the token is in no
// output.
func TestNodeInviteTokenFile(t *testing.T) {
	f := newFakeServer()
	addr := f.start(t)
	path := filepath.Join(t.TempDir(), "enroll.token")
	got := runCLI(t.Context(), addr, "", []string{"node", "invite", "n4", "--control", "--token-file", path})
	if got.code != 0 || got.stderr != "" {
		t.Fatalf("exit %d: %s", got.code, got.stderr)
	}
	if want := "labd --name n4 --control --join 127.0.0.1:7946 --enroll-file " + path + "\n"; got.stdout != want {
		t.Errorf("stdout %q, want %q", got.stdout, want)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "lne1:TOKEN\n" {
		t.Fatalf("token file: %q, %v", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	// Written again (a compose file run twice): replaced whole.
	if got := runCLI(t.Context(), addr, "", []string{"node", "invite", "n4", "--token-file", path}); got.code != 0 {
		t.Fatalf("again: exit %d: %s", got.code, got.stderr)
	}
	got = runCLI(t.Context(), addr, "", []string{"node", "invite", "n4", "--token-file", filepath.Join(t.TempDir(), "no", "such", "dir")})
	if got.code != 1 || !strings.HasPrefix(got.stderr, "error: --token-file: ") || got.stdout != "" {
		t.Errorf("into a missing directory: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
}
