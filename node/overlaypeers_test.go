package node

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/overlay"
)

// TestOverlayRequiresIdentity: once a node seals per pair (its own
// record names its key), a peer without an identity record gets no
// cluster-key fallback: its address is not allowed, and a packet not
// sealed per pair is refused. Before, every member is allowed.
func TestOverlayRequiresIdentity(t *testing.T) {
	keyA, idA := testIdentity(t, "a")
	_, idB := testIdentity(t, "b")
	addrs := map[string]netip.AddrPort{
		"b": netip.MustParseAddrPort("127.0.0.2:6081"),
		"x": netip.MustParseAddrPort("127.0.0.9:6081"), // no record
	}
	for _, tc := range []struct {
		name     string
		ids      []lab.NodeIdentity
		pairOnly bool
	}{
		{"a without its record", []lab.NodeIdentity{idB}, false},
		{"a with its record", []lab.NodeIdentity{idA, idB}, true},
	} {
		p := &packetPath{self: "a", log: slog.New(slog.DiscardHandler)}
		set, removed, pairOnly := buildPeers("a", keyA, tc.ids, addrs, nil, p.log)
		if pairOnly != tc.pairOnly {
			t.Errorf("%s: pairOnly %v, want %v", tc.name, pairOnly, tc.pairOnly)
		}
		p.pairs.set.Store(set)
		p.removed.Store(&removed)
		p.pairOnly.Store(pairOnly)
		p.allow(addrs)
		if !p.accept(addrs["b"]) {
			t.Errorf("%s: b (with a record) is not allowed", tc.name)
		}
		if got := p.accept(addrs["x"]); got == tc.pairOnly {
			t.Errorf("%s: x (no record) allowed %v", tc.name, got)
		}
		want := overlay.Admit
		if tc.pairOnly {
			want = overlay.NotOnNetwork
		}
		if got := p.admit(nil, 1, nil); got != want {
			t.Errorf("%s: a packet not sealed per pair: %v, want %v", tc.name, got, want)
		}
	}
}
