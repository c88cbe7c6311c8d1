package lab

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/store"
)

func TestNodeIdentityAndInviteRecords(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{Origin: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Unix(1_800_000_000, 0).UTC()
	inv := NodeInvite{ID: "abcdefghij", Node: "alice-laptop", Owner: "alice", Created: now, Expires: now.Add(time.Hour)}
	inv.Hash[0], inv.Hash[31] = 7, 9
	if _, err := st.Update(func(tx *store.Tx) error {
		if err := PutNodeIdentity(tx, NodeIdentity{Name: "alice-laptop", Kind: "member", Owner: "alice", Cert: []byte{1, 2}, Serial: "0a", NotAfter: now}); err != nil {
			return err
		}
		return PutNodeInvite(tx, inv)
	}); err != nil {
		t.Fatal(err)
	}
	g := StoreGetter{st}
	n, ok := GetNodeIdentity(g, "alice-laptop")
	if !ok || n.Owner != "alice" || n.Kind != "member" || n.Serial != "0a" || !n.NotAfter.Equal(now) || len(n.Cert) != 2 {
		t.Fatalf("GetNodeIdentity = %+v, %v", n, ok)
	}
	if _, ok := GetNodeIdentity(g, "bob-laptop"); ok {
		t.Fatal("an identity for a node never enrolled")
	}
	if l := ListNodeIdentities(st); len(l) != 1 || l[0].Name != "alice-laptop" {
		t.Fatalf("ListNodeIdentities = %+v", l)
	}
	got, ok := GetNodeInvite(g, "abcdefghij")
	if !ok || got.Node != "alice-laptop" || got.Hash != inv.Hash || !got.Expires.Equal(inv.Expires) {
		t.Fatalf("GetNodeInvite = %+v, %v", got, ok)
	}
	if _, err := st.Update(func(tx *store.Tx) error { DeleteNodeInvite(tx, "abcdefghij"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, ok := GetNodeInvite(g, "abcdefghij"); ok {
		t.Fatal("a deleted invite is still there")
	}
}
