package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// testIDs is a replica's node identity records, shared by the test's
// nodes as if replicated at once.
type testIDs struct {
	mu   sync.Mutex
	recs map[string]testID
}

type testID struct {
	key     crypto.PublicKey
	removed bool
}

func newTestIDs() *testIDs { return &testIDs{recs: map[string]testID{}} }

func (ids *testIDs) Identity(node string) (crypto.PublicKey, bool, bool) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	r, ok := ids.recs[node]
	return r.key, r.removed, ok
}

func (ids *testIDs) set(node string, key crypto.PublicKey, removed bool) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	ids.recs[node] = testID{key, removed}
}

func testKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// enrolled is a test node with its own key and an identity record in ids.
func enrolled(t *testing.T, ids *testIDs, name, addr string) *testNode {
	n := newTestNode(t, name, nil)
	n.addr = addr
	k := testKey(t)
	n.signer, n.ids = k, ids
	ids.set(name, k.Public(), false)
	return n
}

func refusalCountOf(n *testNode, node, reason string) uint64 {
	for r := range n.c.Refusals() {
		if r.Node == node && r.Reason == reason {
			return r.Count
		}
	}
	return 0
}

func wantRefused(n *testNode, node, reason string) func() error {
	return func() error {
		if refusalCountOf(n, node, reason) == 0 {
			return fmt.Errorf("%s has not refused %s for %s", n.name, node, reason)
		}
		return nil
	}
}

// stayOut checks for a while that node is not an alive member of any of
// nodes.
func stayOut(t *testing.T, node string, d time.Duration, nodes ...*testNode) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for _, n := range nodes {
			if st, ok := memberState(n, node); ok && st == StateAlive {
				t.Fatalf("%s admitted %s", n.name, node)
			}
		}
	}
}

// TestSignedNodesJoin: nodes each with a record and signing with their
// record's key join one another.
func TestSignedNodesJoin(t *testing.T) {
	t.Parallel()
	ids := newTestIDs()
	a := enrolled(t, ids, "node-a", "127.0.0.1:0").mustStart()
	b := enrolled(t, ids, "node-b", "127.0.0.2:0").mustStart(a.addr)
	for _, n := range []*testNode{a, b} {
		for _, m := range []string{"node-a", "node-b"} {
			eventually(t, 5*time.Second, "membership", wantState(n, m, StateAlive))
		}
	}
	// New metadata is signed again and taken.
	if err := b.c.UpdateMeta(NodeMeta{APIAddr: "127.0.0.2:7799", Role: RoleMember}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "new meta", func() error {
		for _, m := range a.c.Members() {
			if m.Name == "node-b" && m.Meta.APIAddr == "127.0.0.2:7799" {
				return nil
			}
		}
		return fmt.Errorf("node-a does not see node-b's new meta: %+v", a.c.Members())
	})
	for r := range a.c.Refusals() {
		t.Errorf("refused: %+v", r)
	}
}

// TestImpersonationRefused: a node under another node's name, signing
// with its own (legitimate) key, stays out, is counted, and the honest
// members keep seeing each other.
func TestImpersonationRefused(t *testing.T) {
	t.Parallel()
	ids := newTestIDs()
	a := enrolled(t, ids, "node-a", "127.0.0.1:0").mustStart()
	c := enrolled(t, ids, "node-c", "127.0.0.3:0").mustStart(a.addr)
	// node-b is enrolled but not running; the rogue holds alice's
	// credentials (node-c's key) and claims node-b's name.
	ids.set("node-b", testKey(t).Public(), false)
	rogue := newTestNode(t, "node-b", nil)
	rogue.addr, rogue.signer, rogue.ids = "127.0.0.4:0", c.signer, ids
	rogue.start(a.addr) // its join may or may not report the refusal
	eventually(t, 5*time.Second, "refusal counted", wantRefused(a, "node-b", ReasonBadSignature))
	stayOut(t, "node-b", 2*time.Second, a, c)
	for _, m := range []string{"node-a", "node-c"} {
		eventually(t, 5*time.Second, "honest members", wantState(a, m, StateAlive))
		eventually(t, 5*time.Second, "honest members", wantState(c, m, StateAlive))
	}
}

// TestUnsignedAndUnknownRefused: once a node checks, a peer with a
// record must sign, and a peer without one is refused until its record
// arrives, then admitted.
func TestUnsignedAndUnknownRefused(t *testing.T) {
	t.Parallel()
	ids := newTestIDs()
	a := enrolled(t, ids, "node-a", "127.0.0.1:0").mustStart()

	unsigned := newTestNode(t, "node-u", nil)
	unsigned.addr = "127.0.0.5:0"
	ids.set("node-u", testKey(t).Public(), false)
	unsigned.start(a.addr)
	eventually(t, 5*time.Second, "unsigned refused", wantRefused(a, "node-u", ReasonUnsigned))

	k := testKey(t)
	late := newTestNode(t, "node-l", nil)
	late.addr, late.signer, late.ids = "127.0.0.6:0", k, ids
	// Admitted by node-a's retry (joinPending), not by a push/pull.
	late.tune = func(c *memberlist.Config) { c.PushPullInterval = time.Hour }
	late.start(a.addr)
	eventually(t, 5*time.Second, "unknown refused", wantRefused(a, "node-l", ReasonUnknownNode))
	stayOut(t, "node-l", time.Second, a)
	ids.set("node-l", k.Public(), false) // the record is replicated
	eventually(t, 5*time.Second, "admitted once known", wantState(a, "node-l", StateAlive))
	stayOut(t, "node-u", 0, a)
}

// TestRemovedRefused: a node whose record is removed is refused, even
// signing with its own key.
func TestRemovedRefused(t *testing.T) {
	t.Parallel()
	ids := newTestIDs()
	a := enrolled(t, ids, "node-a", "127.0.0.1:0").mustStart()
	b := enrolled(t, ids, "node-b", "127.0.0.2:0")
	ids.set("node-b", b.signer.Public(), true)
	b.start(a.addr)
	eventually(t, 5*time.Second, "removed refused", wantRefused(a, "node-b", ReasonRemoved))
	stayOut(t, "node-b", 2*time.Second, a)
}

// TestUncheckedWithoutOwnRecord: a node whose replica has no record of
// its own (not enrolled yet, loopback development) admits every peer.
func TestUncheckedWithoutOwnRecord(t *testing.T) {
	t.Parallel()
	ids := newTestIDs()
	a := newTestNode(t, "node-a", nil)
	a.ids = ids
	a.mustStart()
	b := newTestNode(t, "node-b", nil)
	b.addr = "127.0.0.2:0"
	b.mustStart(a.addr)
	eventually(t, 5*time.Second, "membership", wantState(a, "node-b", StateAlive))
}

// TestSignedMetaFitsLimit: the longest plausible metadata, signed, stays
// under memberlist's 512 bytes, and checkPeer takes it only for the name,
// address and port it was signed for.
func TestSignedMetaFitsLimit(t *testing.T) {
	addr := "[fe80::1234:5678:9abc:def0%enp0s31f6-long]:65535"
	m := NodeMeta{APIAddr: addr, OverlayAddr: addr, RaftAddr: addr, Version: "v1.2.3-rc.4+" + strings.Repeat("f", 40), Started: 1 << 40,
		Role: RoleControl, Leader: true, LeaderTerm: 1 << 40, CAHash: "sha256:" + strings.Repeat("ab", 32), CAKey: true}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	k := testKey(t)
	ip := net.ParseIP("fe80::1234:5678:9abc:def0")
	name := strings.Repeat("n", maxNameLen)
	var longest int
	for range 20 { // ASN.1 signatures vary in length
		sig, err := signMeta(k, name, ip, 65535, b[1:])
		if err != nil {
			t.Fatal(err)
		}
		signed, err := signedMeta(b, sig)
		if err != nil {
			t.Fatal(err)
		}
		longest = max(longest, len(signed))
		if got, err := decodeMeta(signed); err != nil || got != m {
			t.Fatalf("decodeMeta = %+v, %v", got, err)
		}
		ids := newTestIDs()
		ids.set("self", nil, false)
		ids.set(name, k.Public(), false)
		c := &Cluster{cfg: Config{Name: "self", Identities: ids, RequireIdentity: true}}
		if r := c.checkPeer(name, ip, 65535, signed); r != "" {
			t.Fatalf("checkPeer of good signature: %s", r)
		}
		for _, bad := range []struct {
			name string
			ip   net.IP
			port uint16
		}{{name, ip, 65534}, {name, net.ParseIP("fe80::1"), 65535}} {
			if r := c.checkPeer(bad.name, bad.ip, bad.port, signed); r != ReasonBadSignature {
				t.Errorf("checkPeer %v: %q, want bad_signature", bad, r)
			}
		}
	}
	t.Logf("signed metadata: %d bytes at most of %d (unsigned %d)", longest, memberlist.MetaMaxSize, len(b))
	if longest > memberlist.MetaMaxSize {
		t.Fatalf("%d bytes", longest)
	}
}

// TestRemovedAfterAdmitted: a member whose record is marked removed while
// it is alive is taken out of Members (dead, so its hosts fail over),
// though it still answers memberlist's probes, and the others stay.
func TestRemovedAfterAdmitted(t *testing.T) {
	t.Parallel()
	ids := newTestIDs()
	a := enrolled(t, ids, "node-a", "127.0.0.1:0").mustStart()
	b := enrolled(t, ids, "node-b", "127.0.0.2:0").mustStart(a.addr)
	c := enrolled(t, ids, "node-c", "127.0.0.3:0").mustStart(a.addr)
	for _, n := range []*testNode{a, c} {
		eventually(t, 5*time.Second, "membership", wantState(n, "node-b", StateAlive))
	}
	changed, stop := a.c.WatchMembers()
	defer stop()
	ids.set("node-b", b.signer.Public(), true)
	for _, n := range []*testNode{a, c} {
		eventually(t, 5*time.Second, "removed", wantState(n, "node-b", StateDead))
		eventually(t, 5*time.Second, "counted", wantRefused(n, "node-b", ReasonRemoved))
	}
	select {
	case <-changed:
	default:
		t.Error("no membership change signalled")
	}
	// New metadata from the removed node is refused too.
	if err := b.c.UpdateMeta(NodeMeta{APIAddr: "127.0.0.2:7788"}); err != nil {
		t.Fatal(err)
	}
	stayOut(t, "node-b", time.Second, a, c)
	eventually(t, 5*time.Second, "honest", wantState(a, "node-c", StateAlive))
	eventually(t, 5*time.Second, "honest", wantState(c, "node-a", StateAlive))
}

// FuzzCheckPeer: untrusted metadata never panics the check, and only a
// real signature by the record's key is admitted.
func FuzzCheckPeer(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ip := net.ParseIP("127.0.0.2")
	b, _ := encodeMeta(NodeMeta{APIAddr: "127.0.0.2:7700"})
	sig, _ := signMeta(k, "node-b", ip, 7946, b[1:])
	good, _ := signedMeta(b, sig)
	f.Add(good)
	f.Add(b)
	f.Add([]byte{metaSigned, 3, 1, 2, 3, '{', '}'})
	ids := newTestIDs()
	ids.set("self", nil, false)
	ids.set("node-b", k.Public(), false)
	c := &Cluster{cfg: Config{Name: "self", Identities: ids, RequireIdentity: true}}
	f.Fuzz(func(t *testing.T, meta []byte) {
		r := c.checkPeer("node-b", ip, 7946, meta)
		decodeMeta(meta)
		if r == "" && string(meta) != string(good) {
			body, sig, err := splitMeta(meta)
			if err != nil || !verifyMeta(k.Public(), "node-b", ip, 7946, body, sig) {
				t.Fatalf("admitted %x", meta)
			}
		}
	})
}

// BenchmarkCheckPeer: what the alive delegate costs per message, for news
// heard before (remembered) and for new metadata (an ECDSA verification).
func BenchmarkCheckPeer(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ip := net.ParseIP("127.0.0.2")
	m, _ := encodeMeta(NodeMeta{APIAddr: "127.0.0.2:7700", Role: RoleMember})
	sig, _ := signMeta(k, "node-b", ip, 7946, m[1:])
	meta, _ := signedMeta(m, sig)
	ids := newTestIDs()
	ids.set("self", nil, false)
	ids.set("node-b", k.Public(), false)
	c := &Cluster{cfg: Config{Name: "self", Identities: ids, RequireIdentity: true}}
	b.Run("remembered", func(b *testing.B) {
		for b.Loop() {
			if c.checkPeer("node-b", ip, 7946, meta) != "" {
				b.Fatal("refused")
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			c.verified = verifiedMetas{}
			if c.checkPeer("node-b", ip, 7946, meta) != "" {
				b.Fatal("refused")
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			signMeta(k, "node-b", ip, 7946, m[1:])
		}
	})
}

// kindIDs are testIDs that also tell which nodes are control nodes.
type kindIDs struct {
	*testIDs
	control map[string]bool
}

func (k kindIDs) IsControl(node string) bool { return k.control[node] }

// TestMemberClaimingControlRefused: a member signing with its own key is
// refused when its metadata says it is a control node (or leads); the
// same member with a member's metadata is admitted, and a control node
// may say so.
func TestMemberClaimingControlRefused(t *testing.T) {
	t.Parallel()
	base := newTestIDs()
	ids := kindIDs{base, map[string]bool{"node-a": true}}
	a := enrolled(t, base, "node-a", "127.0.0.1:0")
	a.ids, a.role = ids, RoleControl
	a.mustStart()
	m := enrolled(t, base, "node-m", "127.0.0.2:0")
	m.ids, m.role = ids, RoleControl
	m.start(a.addr)
	eventually(t, 5*time.Second, "claim refused", wantRefused(a, "node-m", ReasonClaimsControl))
	stayOut(t, "node-m", time.Second, a)
	if err := m.c.UpdateMeta(NodeMeta{Role: RoleMember}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the member admitted as a member", wantState(a, "node-m", StateAlive))
	eventually(t, 5*time.Second, "the control node admitted by the member", wantState(m, "node-a", StateAlive))
	if !claimsControl([]byte(`{"leader":true}`)) || !claimsControl([]byte(`{"cakey":true}`)) || !claimsControl([]byte(`not json`)) || claimsControl([]byte(`{"role":"member","api":"127.0.0.1:1"}`)) {
		t.Error("claimsControl")
	}
}
