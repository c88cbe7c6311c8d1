package node

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestReassign: the hosts of a gone node go to the least-loaded live
// nodes, first by name among equals, as apply places new hosts; a host
// that opts out stays.
func TestReassign(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hosts := []*labv1.Host{
		{Name: lab.HostName("l", "a1"), Node: "a"},
		{Name: lab.HostName("l", "g1"), Node: "gone"},
		{Name: lab.HostName("l", "g2"), Node: "gone"},
		{Name: lab.HostName("l", "g3"), Node: "gone"},
		{Name: lab.HostName("l", "g4"), Node: "gone", NoFailover: true},
	}
	var moved []string
	_, err = st.Update(func(tx *store.Tx) error {
		for _, h := range hosts {
			if err := lab.PutHost(tx, h); err != nil {
				return err
			}
		}
		var err error
		moved, err = reassign(tx, []string{"b", "a"}, map[string]bool{"gone": true}, slog.New(slog.DiscardHandler))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"labs/l/hosts/g1 gone->b", // b holds none, a one
		"labs/l/hosts/g2 gone->a", // a tie: a comes first
		"labs/l/hosts/g3 gone->b",
	}
	if diff := cmp.Diff(want, moved); diff != "" {
		t.Errorf("moves (-want +got):\n%s", diff)
	}
	all, err := lab.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	for _, h := range all.Hosts {
		nodes[lab.ID(h.Name)] = h.Node
	}
	if diff := cmp.Diff(map[string]string{"a1": "a", "g1": "b", "g2": "a", "g3": "b", "g4": "gone"}, nodes); diff != "" {
		t.Errorf("stored placement (-want +got):\n%s", diff)
	}
}
