package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

func gkey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// keyedCluster3 is cluster3 with every node on the keyring keys.
func keyedCluster3(t *testing.T, keys ...[]byte) (a, b, c *testNode) {
	t.Helper()
	a = newTestNode(t, "node-a", nil)
	a.role, a.keys = RoleControl, keys
	a.mustStart()
	b = newTestNode(t, "node-b", nil)
	b.role, b.keys = RoleMember, keys
	b.mustStart(a.addr)
	c = newTestNode(t, "node-c", nil)
	c.role, c.keys = RoleMember, keys
	c.mustStart(a.addr)
	for _, n := range []*testNode{a, b, c} {
		for _, m := range []string{"node-a", "node-b", "node-c"} {
			eventually(t, 5*time.Second, "membership", wantState(n, m, StateAlive))
		}
	}
	return a, b, c
}

// metaSpreads changes from's metadata and waits until to sees it: gossip
// from one to the other is heard.
func metaSpreads(t *testing.T, from *testNode, version string, to ...*testNode) {
	t.Helper()
	m := from.c.Members()
	var meta NodeMeta
	for _, x := range m {
		if x.Name == from.name {
			meta = x.Meta
		}
	}
	meta.Version = version
	if err := from.c.UpdateMeta(meta); err != nil {
		t.Fatal(err)
	}
	for _, n := range to {
		eventually(t, 5*time.Second, "metadata from "+from.name+" at "+n.name, func() error {
			for _, x := range n.c.Members() {
				if x.Name == from.name && x.Meta.Version == version && x.State == StateAlive {
					return nil
				}
			}
			return fmt.Errorf("%s does not see %s's version %s", n.name, from.name, version)
		})
	}
}

func wantKeys(t *testing.T, n *testNode, want ...[]byte) {
	t.Helper()
	got := n.c.Keys()
	if len(got) != len(want) {
		t.Fatalf("%s: %d keys, want %d", n.name, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: key %d is %x, want %x", n.name, i, got[i][:2], want[i][:2])
		}
	}
}

func TestKeyringShared(t *testing.T) {
	t.Parallel()
	a, b, c := keyedCluster3(t, gkey(1), gkey(2))
	for _, n := range []*testNode{a, b, c} {
		if !n.c.Encrypted() {
			t.Errorf("%s: gossip not encrypted", n.name)
		}
		wantKeys(t, n, gkey(1), gkey(2))
	}
	metaSpreads(t, b, "v2", a, c)
	// A node with another key cannot join.
	d := newTestNode(t, "node-d", nil)
	d.keys = [][]byte{gkey(9)}
	var km *KeyMismatchError
	if err := d.start(a.addr); !errors.As(err, &km) {
		t.Fatalf("a node with another key joined: %v", err)
	}
	// Nor can one without a key.
	e := newTestNode(t, "node-e", nil)
	if err := e.start(a.addr); !errors.As(err, &km) {
		t.Fatalf("a node without a key joined: %v", err)
	}
}

// TestKeyRotation rotates the keys as the leader does (a new key
// installed everywhere, made primary, the old one dropped) while a fourth
// node, the "removed" one, keeps only the old key: gossip goes on among
// the others, and once the old key is dropped the removed node is neither
// heard nor able to join again.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	old, next := gkey(1), gkey(2)
	a, b, c := keyedCluster3(t, old)
	r := newTestNode(t, "node-r", nil)
	r.role, r.keys = RoleMember, [][]byte{old}
	r.mustStart(a.addr)
	for _, n := range []*testNode{a, b, c} {
		eventually(t, 5*time.Second, "the removed node joined", wantState(n, "node-r", StateAlive))
	}
	honest := []*testNode{a, b, c}
	set := func(keys ...[]byte) {
		t.Helper()
		for _, n := range honest {
			if err := n.c.SetKeys(keys); err != nil {
				t.Fatal(err)
			}
			if err := n.c.SetKeys(keys); err != nil { // idempotent
				t.Fatal(err)
			}
			wantKeys(t, n, keys...)
		}
	}
	set(old, next) // installed for decryption
	metaSpreads(t, a, "v1", b, c)
	set(next, old) // primary
	metaSpreads(t, c, "v2", a, b)
	set(next) // the old key dropped
	metaSpreads(t, b, "v3", a, c)
	for _, n := range honest {
		eventually(t, 10*time.Second, "the removed node is not heard", func() error {
			if st, _ := memberState(n, "node-r"); st == StateAlive {
				return fmt.Errorf("%s still sees node-r alive", n.name)
			}
			return nil
		})
	}
	for _, n := range honest {
		for _, m := range []string{"node-a", "node-b", "node-c"} {
			if st, _ := memberState(n, m); st != StateAlive {
				t.Errorf("%s sees %s %v after the rotation", n.name, m, st)
			}
		}
	}
	// Restarted with what it kept, it cannot join.
	r.stop()
	r2 := newTestNode(t, "node-r2", nil)
	r2.keys = [][]byte{old}
	var km *KeyMismatchError
	if err := r2.start(a.addr); !errors.As(err, &km) {
		t.Fatalf("a node with the dropped key joined: %v", err)
	}
	// A node given the new keys (over GossipKeys, say) joins.
	d := newTestNode(t, "node-d", nil)
	d.keys = [][]byte{next}
	d.mustStart(a.addr)
	eventually(t, 5*time.Second, "the node with the new key joined", wantState(a, "node-d", StateAlive))
}

func TestSetKeysRefuses(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "node-a", nil)
	n.mustStart()
	if n.c.Encrypted() {
		t.Fatal("a node without keys encrypts")
	}
	if err := n.c.SetKeys(nil); err != nil {
		t.Errorf("no keys on a plaintext node: %v", err)
	}
	if err := n.c.SetKeys([][]byte{make([]byte, 7)}); err == nil {
		t.Error("a 7-byte key was installed")
	}
	if err := n.c.SetKeys([][]byte{gkey(1)}); err != nil {
		t.Fatal(err)
	}
	if !n.c.Encrypted() {
		t.Error("not encrypted after SetKeys")
	}
	if err := n.c.SetKeys(nil); err == nil {
		t.Error("encryption turned off")
	}
	// The keys after one to remove are put back (in memberlist's order).
	if err := n.c.SetKeys([][]byte{gkey(1), gkey(2), gkey(3)}); err != nil {
		t.Fatal(err)
	}
	if err := n.c.SetKeys([][]byte{gkey(1), gkey(3)}); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, n, gkey(1), gkey(3))
	// The cluster key goes after Config.Keys, hashed as ever.
	m := newTestNode(t, "node-b", []byte("passphrase"))
	m.keys = [][]byte{gkey(5)}
	m.mustStart()
	wantKeys(t, m, gkey(5), gossipKey([]byte("passphrase")))
}

// TestControlAPIs: a node knows the control nodes' API addresses from
// gossip, and after a restart from the known nodes' file, where a node
// with stale gossip keys asks for the current ones.
func TestControlAPIs(t *testing.T) {
	t.Parallel()
	a, b, _ := keyedCluster3(t, gkey(1))
	if got := b.c.ControlAPIs(); len(got) != 1 || got[0] != "127.0.0.1:77a" {
		t.Fatalf("node-b's control APIs: %v, want node-a's", got)
	}
	a.stop()
	b.stop()
	again := &testNode{t: t, name: "node-b", dir: b.dir, addr: "127.0.0.1:0", keys: [][]byte{gkey(2)}}
	again.start() // node-a is gone: the join fails, the file remains
	if got := again.c.ControlAPIs(); len(got) != 1 || got[0] != "127.0.0.1:77a" {
		t.Errorf("node-b's control APIs after a restart: %v, want node-a's from the file", got)
	}
}
