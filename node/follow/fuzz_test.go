package follow

import (
	"testing"

	"google.golang.org/protobuf/proto"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// FuzzHandle feeds a replica decoded messages from a hostile control node:
// no panic, and whatever is applied keeps the replica's invariants (keys
// non-empty and sorted snapshots, revisions that only grow).
func FuzzHandle(f *testing.F) {
	for _, m := range []*labv1.FollowResponse{
		snapshotOf(3, "a", "1", "b", "2"),
		putChange(4, "c", "3"),
		changeMessage(Change{Rev: 5, Ops: []Op{{Key: "a"}}}),
		{Event: &labv1.FollowResponse_Heartbeat{Heartbeat: &labv1.Heartbeat{Revision: 5}}},
		{Event: &labv1.FollowResponse_Snapshot{Snapshot: &labv1.StateSnapshot{Revision: 9}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, b)
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		rep := newMemStore(0)
		fl := New(Config{Replica: func() Replica { return rep }})
		var snap snapshotBuilder
		for _, b := range [][]byte{first, second} {
			var m labv1.FollowResponse
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			before := rep.Revision()
			if err := fl.handle(rep, &snap, &m); err != nil {
				return
			}
			if _, ok := m.GetEvent().(*labv1.FollowResponse_Change); ok && rep.Revision() <= before {
				t.Fatalf("a change left the revision at %d (was %d)", rep.Revision(), before)
			}
			for k := range rep.recs {
				if k == "" {
					t.Fatal("an empty key was applied")
				}
			}
		}
	})
}
