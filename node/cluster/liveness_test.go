package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberAt checks that n sees name alive at addr.
func memberAt(n *testNode, name, addr string) func() error {
	return func() error {
		for _, m := range n.c.Members() {
			if m.Name != name {
				continue
			}
			if m.State != StateAlive || m.Addr != addr {
				return fmt.Errorf("%s sees %s %v at %s, want alive at %s", n.name, name, m.State, m.Addr, addr)
			}
			return nil
		}
		return fmt.Errorf("%s does not know %s", n.name, name)
	}
}

// timeUntil polls cond for every node until it holds for all, and returns
// how long that took.
func timeUntil(t *testing.T, timeout time.Duration, what string, nodes []*testNode, cond func(*testNode) func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for _, n := range nodes {
		eventually(t, max(timeout-time.Since(start), time.Second), what, cond(n))
	}
	return time.Since(start)
}

func TestUpdateMetaSpreads(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	meta := NodeMeta{APIAddr: "127.0.0.1:77a", OverlayAddr: "127.0.0.1:60a", Version: "test", Role: RoleControl, RaftAddr: "127.0.0.1:7701", Leader: true}
	if err := a.c.UpdateMeta(meta); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{a, b, c} {
		eventually(t, 5*time.Second, "leadership spread", func() error {
			for _, m := range n.c.Members() {
				if m.Name == "node-a" && m.Meta == meta {
					return nil
				}
			}
			return fmt.Errorf("%s does not see node-a's new metadata", n.name)
		})
	}
	big := meta
	big.Version = strings.Repeat("v", 600)
	if err := a.c.UpdateMeta(big); err == nil {
		t.Error("UpdateMeta took metadata over memberlist's limit")
	}
}

// TestMetaFitsLimit: metadata with long but plausible addresses (IPv6 with
// zones) stays under memberlist's 512 bytes.
func TestMetaFitsLimit(t *testing.T) {
	addr := "[fe80::1234:5678:9abc:def0%enp0s31f6-long]:65535"
	m := NodeMeta{APIAddr: addr, OverlayAddr: addr, RaftAddr: addr, Version: "v1.2.3-rc.4+" + strings.Repeat("f", 40), Started: 1 << 40, Role: RoleControl, Leader: true}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > memberlist.MetaMaxSize {
		t.Fatalf("%d bytes", len(b))
	}
	got, err := decodeMeta(b)
	if err != nil || got != m {
		t.Errorf("decodeMeta = %+v, %v", got, err)
	}
}

// TestNameTakenRefused: a second node claiming a live node's name, from
// another address, fails Start with a clear error, and the cluster keeps
// the live one.
func TestNameTakenRefused(t *testing.T) {
	t.Parallel()
	a, b, _ := cluster3(t, nil)
	x := newTestNode(t, "node-b", nil)
	x.addr = "127.0.0.2:0"
	err := x.start(a.addr)
	var taken *NameTakenError
	if !errors.As(err, &taken) {
		t.Fatalf("second node-b: Start = %v, want a NameTakenError", err)
	}
	if want := "node name node-b is taken by a live node at " + b.addr + ": choose another --name"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	x.stop()
	time.Sleep(time.Second)
	if err := memberAt(a, "node-b", b.addr)(); err != nil {
		t.Error(err)
	}
}

// TestRestartAtNewAddress: a node killed and started again under the same
// name at another address (a laptop back with a new IP) is taken back, at
// its new address, by every node.
func TestRestartAtNewAddress(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	c.stop()
	c.addr = "127.0.0.3:0"
	start := time.Now()
	if err := c.start(b.addr); err != nil {
		t.Fatalf("restart at a new address: %v", err)
	}
	took := timeUntil(t, 30*time.Second, "c at its new address", []*testNode{a, b, c}, func(n *testNode) func() error { return memberAt(n, "node-c", c.addr) })
	t.Logf("restarted at a new address: every node has it after %v (Start took %v)", took, time.Since(start)-took)
}

// TestRestartAtNewAddressAfterLeave: a node that left (Ctrl-C) comes back
// at another address at once: memberlist lets a left node's name move.
func TestRestartAtNewAddressAfterLeave(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	if err := c.c.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.stop()
	eventually(t, 5*time.Second, "c left", wantState(a, "node-c", StateLeft))
	c.addr = "127.0.0.4:0"
	if err := c.start(b.addr); err != nil {
		t.Fatalf("restart at a new address: %v", err)
	}
	took := timeUntil(t, 30*time.Second, "c at its new address", []*testNode{a, b, c}, func(n *testNode) func() error { return memberAt(n, "node-c", c.addr) })
	t.Logf("left, restarted at a new address: every node has it after %v", took)
}

// TestCutNodeComesBack: a node whose gossip is cut off long enough for
// every side to find the other dead is back, on every node, within seconds
// of the heal, though the others never join it and it sees no live node.
func TestCutNodeComesBack(t *testing.T) {
	t.Parallel()
	a, b := newTestNode(t, "node-a", nil), newTestNode(t, "node-b", nil)
	a.role, b.role = RoleControl, RoleMember
	a.mustStart()
	b.mustStart(a.addr)
	c := newTestNode(t, "node-c", nil)
	c.role, c.cut = RoleMember, &cutSwitch{}
	c.mustStart(a.addr)
	all := []*testNode{a, b, c}
	timeUntil(t, 5*time.Second, "all alive", all, func(n *testNode) func() error { return memberAt(n, "node-c", c.addr) })

	c.cut.set(true)
	eventually(t, 10*time.Second, "c dead", wantState(a, "node-c", StateDead))
	eventually(t, 10*time.Second, "c dead", wantState(b, "node-c", StateDead))
	eventually(t, 10*time.Second, "a dead for c", wantState(c, "node-a", StateDead))
	eventually(t, 10*time.Second, "b dead for c", wantState(c, "node-b", StateDead))
	c.cut.set(false)
	took := timeUntil(t, 20*time.Second, "all alive after the heal", all, func(n *testNode) func() error {
		return func() error {
			for _, name := range []string{"node-a", "node-b", "node-c"} {
				if err := wantState(n, name, StateAlive)(); err != nil {
					return err
				}
			}
			return nil
		}
	})
	t.Logf("cut node back on every node %v after the heal", took)
}

// TestControlRestartRejoined: the teacher's labd (the control node every
// member joined) killed and started again, alone and with no --join, is
// rejoined by every member within seconds.
func TestControlRestartRejoined(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	a.stop()
	eventually(t, 10*time.Second, "a dead", wantState(b, "node-a", StateDead))
	eventually(t, 10*time.Second, "a dead", wantState(c, "node-a", StateDead))
	start := time.Now()
	a.mustStart()
	took := timeUntil(t, 20*time.Second, "members back with a", []*testNode{a, b, c}, func(n *testNode) func() error {
		return func() error {
			for _, name := range []string{"node-a", "node-b", "node-c"} {
				if err := wantState(n, name, StateAlive)(); err != nil {
					return err
				}
			}
			return nil
		}
	})
	t.Logf("control node restarted: every node sees every node alive %v after its start (%v)", took, time.Since(start))
}

// TestKnownControlNodesPersist: a member remembers the control nodes it
// saw, across a restart without --join.
func TestKnownControlNodesPersist(t *testing.T) {
	t.Parallel()
	a, _, c := cluster3(t, nil)
	c.stop()
	b, err := os.ReadFile(filepath.Join(c.dir, "known-nodes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f knownFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Control) != 1 || f.Control[0].Name != "node-a" || f.Control[0].Addr != a.addr {
		t.Fatalf("known nodes: %s", b)
	}
	c.mustStart() // no --join: the file says where node-a is
	eventually(t, 10*time.Second, "c back", wantState(a, "node-c", StateAlive))
	eventually(t, 10*time.Second, "a seen by c", wantState(c, "node-a", StateAlive))

	// A control node demoted to member is dropped from the file.
	meta := a.c.cfg.Meta
	meta.Role = RoleMember
	if err := a.c.UpdateMeta(meta); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a forgotten as control", func() error {
		if k := c.c.known.controls(); len(k) != 0 {
			return fmt.Errorf("known: %v", k)
		}
		return nil
	})
}

// TestForgetAfter: dead nodes leave the list after ForgetAfter, with a
// signal to watchers.
func TestForgetAfter(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, "node-a", nil)
	a.forget = 500 * time.Millisecond
	a.mustStart()
	b := newTestNode(t, "node-b", nil).mustStart(a.addr)
	eventually(t, 5*time.Second, "b alive", wantState(a, "node-b", StateAlive))
	b.stop()
	eventually(t, 10*time.Second, "b dead", wantState(a, "node-b", StateDead))
	watch, unwatch := a.c.WatchMembers()
	defer unwatch()
	eventually(t, 10*time.Second, "b forgotten", func() error {
		if st, ok := memberState(a, "node-b"); ok {
			return fmt.Errorf("node-b still listed, %v", st)
		}
		return nil
	})
	select {
	case <-watch:
	case <-time.After(5 * time.Second):
		t.Error("no signal when node-b was forgotten")
	}
}

// TestCutDurations measures, with labd's own timers only
// (LABNET_LAN_TIMERS=1: it takes a minute and a half), how long after the
// heal a member cut off for 10 s and for 30 s is alive again on every node.
func TestCutDurations(t *testing.T) {
	if !lanTimers {
		t.Skip("a measurement with labd's timers: LABNET_LAN_TIMERS=1")
	}
	for _, cut := range []time.Duration{10 * time.Second, 30 * time.Second} {
		t.Run(cut.String(), func(t *testing.T) {
			a, b := newTestNode(t, "node-a", nil), newTestNode(t, "node-b", nil)
			a.role, b.role = RoleControl, RoleMember
			a.mustStart()
			b.mustStart(a.addr)
			c := newTestNode(t, "node-c", nil)
			c.role, c.cut = RoleMember, &cutSwitch{}
			c.mustStart(a.addr)
			all := []*testNode{a, b, c}
			allAlive := func(n *testNode) func() error {
				return func() error {
					for _, name := range []string{"node-a", "node-b", "node-c"} {
						if err := wantState(n, name, StateAlive)(); err != nil {
							return err
						}
					}
					return nil
				}
			}
			timeUntil(t, 10*time.Second, "all alive", all, allAlive)
			c.cut.set(true)
			time.Sleep(cut)
			st, _ := memberState(a, "node-c")
			c.cut.set(false)
			took := timeUntil(t, 60*time.Second, "all alive after the heal", all, allAlive)
			t.Logf("cut %v (node-a saw node-c %v at the heal): every node sees every node alive %v after the heal", cut, st, took)
		})
	}
}
