package node

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// runFastKeys is runDaemon with the rotation's graces short.
func runFastKeys(t *testing.T, cfg Config, log *slog.Logger) (*Daemon, func()) {
	t.Helper()
	d, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	d.keys.promote, d.keys.drop = 300*time.Millisecond, 2*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", cfg.Name, err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("%s: Close: %v", cfg.Name, err)
		}
	}
	t.Cleanup(stop)
	return d, stop
}

func sameKeys(a, b [][]byte) bool { return slices.EqualFunc(a, b, bytes.Equal) }

func sees(d *Daemon, name string) bool {
	for _, m := range d.members.cl.Members() {
		if m.Name == name {
			return m.State == cluster.StateAlive
		}
	}
	return false
}

// TestGossipKeysFromControlPlane: the control node's keyring record is
// made from its cluster key; members invited without the cluster key get
// the keys from Enroll (kept in DATA/gossip.keys) and join with them;
// removing alice-laptop rotates the keys on every live node (counted),
// while alice-laptop, whose state stream is cut, keeps the old key and is
// no longer heard once it is dropped; bob-laptop, off during a second
// rotation, restarts with stale keys, fetches the current ones over
// GossipKeys and joins again.
func TestGossipKeysFromControlPlane(t *testing.T) {
	seed := gossipPort(t)
	ck := []byte("class secret")
	c1, _ := runFastKeys(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true, Key: ck}, slog.New(slog.DiscardHandler))
	conn := dialAdmin(t, c1, c1)
	first := cluster.KeyOf(ck)
	waitUntil(t, "the keyring record", func() bool {
		k, ok := lab.GetGossipKeys(lab.StoreGetter{St: c1.store})
		return ok && sameKeys(k.Keys, [][]byte{first}) && k.Generation == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := labv1.NewNodeServiceClient(conn)
	invite := func(name string) string {
		t.Helper()
		inv, err := nodes.CreateNodeInvite(ctx, &labv1.CreateNodeInviteRequest{NodeId: name})
		if err != nil {
			t.Fatal(err)
		}
		return inv.Token
	}
	adir, bdir := t.TempDir(), t.TempDir()
	alice, _ := runFastKeys(t, Config{Name: "alice-laptop", DataDir: adir, API: "127.0.0.2:0", Gossip: "127.0.0.2:0", Overlay: "127.0.0.2:0", Join: []string{seed}, Enroll: invite("alice-laptop")}, slog.New(slog.DiscardHandler))
	bob, stopBob := runFastKeys(t, Config{Name: "bob-laptop", DataDir: bdir, API: "127.0.0.3:0", Gossip: "127.0.0.3:0", Overlay: "127.0.0.3:0", Join: []string{seed}, Enroll: invite("bob-laptop")}, slog.New(slog.DiscardHandler))
	for _, d := range []*Daemon{alice, bob} {
		waitUntil(t, d.cfg.Name+" joined", func() bool { return sees(c1, d.cfg.Name) && sees(d, "c1") })
		kept, err := loadGossipKeys(d.cfg.DataDir)
		if err != nil || !sameKeys(kept, [][]byte{first}) {
			t.Errorf("%s's %s: %x, %v; want the cluster key's", d.cfg.Name, gossipKeysFile, kept, err)
		}
		if fi, err := os.Stat(filepath.Join(d.cfg.DataDir, gossipKeysFile)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s's %s: %v, %v; want mode 0600", d.cfg.Name, gossipKeysFile, fi, err)
		}
	}
	waitUntil(t, "bob to see alice", func() bool { return sees(bob, "alice-laptop") })

	// Removing alice-laptop rotates the keys.
	if _, err := nodes.RemoveNode(ctx, &labv1.RemoveNodeRequest{Name: "nodes/alice-laptop"}); err != nil {
		t.Fatal(err)
	}
	var rotated lab.GossipKeys
	waitUntil(t, "the old key dropped", func() bool {
		k, _ := lab.GetGossipKeys(lab.StoreGetter{St: c1.store})
		rotated = k
		return len(k.Keys) == 1 && !bytes.Equal(k.Keys[0], first)
	})
	for _, d := range []*Daemon{c1, bob} {
		waitUntil(t, d.cfg.Name+" on the new key", func() bool { return sameKeys(d.members.cl.Keys(), rotated.Keys) })
		waitUntil(t, d.cfg.Name+" keeps the new key", func() bool {
			kept, _ := loadGossipKeys(d.cfg.DataDir)
			return sameKeys(kept, rotated.Keys)
		})
	}
	if slices.ContainsFunc(alice.members.cl.Keys(), func(k []byte) bool { return bytes.Equal(k, rotated.Keys[0]) }) {
		t.Error("the removed node got the new gossip key")
	}
	waitUntil(t, "c1 and bob no longer hear alice", func() bool { return !sees(c1, "alice-laptop") && !sees(bob, "alice-laptop") })
	// Nor does it get the keys by asking: its certificate is refused.
	if keys, err := alice.keys.ask(ctx, c1.api.lis.Addr().String()); status.Code(err) != codes.PermissionDenied {
		t.Errorf("the removed node's GossipKeys: %x, %v; want PermissionDenied", keys, err)
	}
	if keys, err := bob.keys.ask(ctx, c1.api.lis.Addr().String()); err != nil || !sameKeys(keys, rotated.Keys) {
		t.Errorf("bob-laptop's GossipKeys: %x, %v; want the current keys", keys, err)
	}
	waitUntil(t, "c1 and bob hear each other", func() bool { return sees(c1, "bob-laptop") && sees(bob, "c1") })
	if n := c1.keys.rotations.Load(); n != 1 {
		t.Errorf("rotations counted on c1: %d, want 1", n)
	}

	// bob-laptop is off while carol-laptop is enrolled and removed.
	stopBob()
	tok, _ := auth.ParseEnrollToken(invite("carol-laptop"))
	if err := enrollDirect(ctx, t, c1, "carol-laptop", tok.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.RemoveNode(ctx, &labv1.RemoveNodeRequest{Name: "nodes/carol-laptop"}); err != nil {
		t.Fatal(err)
	}
	var again lab.GossipKeys
	waitUntil(t, "the second rotation done", func() bool {
		k, _ := lab.GetGossipKeys(lab.StoreGetter{St: c1.store})
		again = k
		return len(k.Keys) == 1 && !bytes.Equal(k.Keys[0], rotated.Keys[0])
	})
	var logs syncBuffer
	bob2, _ := runFastKeys(t, Config{Name: "bob-laptop", DataDir: bdir, API: "127.0.0.3:0", Gossip: "127.0.0.3:0", Overlay: "127.0.0.3:0", Join: []string{seed}}, slog.New(slog.NewTextHandler(&logs, nil)))
	waitUntil(t, "bob-laptop back with the current keys", func() bool {
		return sameKeys(bob2.members.cl.Keys(), again.Keys) && sees(c1, "bob-laptop") && sees(bob2, "c1")
	})
	if !strings.Contains(logs.String(), "gossip keys fetched from a control node") {
		t.Errorf("bob-laptop's log does not say it fetched the keys:\n%s", logs.String())
	}
	if n := c1.keys.rotations.Load(); n != 2 {
		t.Errorf("rotations counted on c1: %d, want 2", n)
	}
}
