package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestEnrolWithInvite: an admin invites node alice-laptop owned by alice;
// the control node that formed the cluster has its own identity record;
// a labd started with the token (no cluster key proof) enrols with it,
// gets a certificate naming its owner and kind, and its identity record;
// the invite is used up (a second use, and a use for another name, are
// refused with PermissionDenied and counted).
func TestEnrolWithInvite(t *testing.T) {
	seed := gossipPort(t)
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true}, slog.New(slog.DiscardHandler))
	conn := dialAdmin(t, c1, c1)
	waitUntil(t, "c1's identity record", func() bool {
		id, ok := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "c1")
		return ok && id.Kind == auth.KindControl && id.Serial != ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c1.control.Update(ctx, func(tx *store.Tx) error {
		return lab.PutUser(tx, lab.User{ID: "alice", Role: auth.Student})
	}); err != nil {
		t.Fatal(err)
	}
	nodes := labv1.NewNodeServiceClient(conn)
	inv, err := nodes.CreateNodeInvite(ctx, &labv1.CreateNodeInviteRequest{NodeId: "alice-laptop", Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.ParseEnrollToken(inv.Token)
	if err != nil {
		t.Fatal(err)
	}
	if tok.CAHash != c1.pki.caHash() || tok.API != c1.api.lis.Addr().String() {
		t.Errorf("token %+v; want c1's CA %s and API %s", tok, c1.pki.caHash(), c1.api.lis.Addr())
	}
	for _, want := range []string{"labd --name alice-laptop", "--join " + c1.members.cl.LocalAddr(), "--enroll " + inv.Token} {
		if !strings.Contains(inv.Command, want) {
			t.Errorf("command %q lacks %q", inv.Command, want)
		}
	}

	// Another name with alice's token is refused, and the invite stays.
	if err := enrollDirect(ctx, t, c1, "bob-laptop", tok.Key); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "another node name") {
		t.Errorf("Enroll as bob-laptop with alice-laptop's invite: %v; want PermissionDenied naming the node name", err)
	}

	mdir := t.TempDir()
	a1, stopA1 := runDaemon(t, Config{Name: "alice-laptop", DataDir: mdir, API: "127.0.0.2:0", Gossip: "127.0.0.2:0", Overlay: "127.0.0.2:0", Join: []string{seed}, Enroll: inv.Token}, slog.New(slog.DiscardHandler))
	waitUntil(t, "alice-laptop enrolled", a1.pki.hasCert)
	_, cert, err := auth.LoadNodeCert(mdir)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := auth.OwnerOf(cert); o != "alice" || auth.NodeKind(cert) != auth.KindMember {
		t.Errorf("alice-laptop's certificate: owner %q kind %q; want alice, member", o, auth.NodeKind(cert))
	}
	id, ok := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "alice-laptop")
	if !ok || id.Owner != "alice" || id.Serial != cert.SerialNumber.Text(16) || id.Removed {
		t.Errorf("alice-laptop's identity record: %+v %v; want owner alice, serial %s", id, ok, cert.SerialNumber.Text(16))
	}
	// The invite is used up.
	if err := enrollDirect(ctx, t, c1, "alice-laptop", tok.Key); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "used already") {
		t.Errorf("Enroll with a used invite: %v; want PermissionDenied saying it was used", err)
	}

	// alice-laptop calls c1 with its certificate: accepted, until it is
	// removed; then refused.
	peerConn, err := a1.api.peers.dial("c1")
	if err != nil {
		t.Fatal(err)
	}
	follow := func() error {
		fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
		defer fcancel()
		st, err := labv1.NewControlServiceClient(peerConn).Follow(fctx, &labv1.FollowRequest{Node: "alice-laptop"})
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}
	if err := follow(); err != nil {
		t.Fatalf("alice-laptop's Follow of c1 with its certificate: %v", err)
	}
	if _, err := nodes.RemoveNode(ctx, &labv1.RemoveNodeRequest{Name: "nodes/alice-laptop"}); err != nil {
		t.Fatal(err)
	}
	if id, _ := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "alice-laptop"); !id.Removed || id.RemovedAt.IsZero() {
		t.Errorf("alice-laptop's identity after RemoveNode: %+v; want removed", id)
	}
	if err := follow(); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "removed") {
		t.Errorf("a removed node's Follow: %v; want PermissionDenied saying it was removed", err)
	}
	removedCalls := func() (n uint64) {
		c1.api.auth.Refused(func(node, reason string, c uint64) bool {
			if node == "alice-laptop" && reason == "removed" {
				n = c
			}
			return true
		})
		return n
	}
	if removedCalls() == 0 {
		t.Error("c1 did not count the removed node's refused call")
	}
	// Restarted with its old files, it is refused still: its follower's
	// calls are counted as a removed node's.
	stopA1()
	before := removedCalls()
	runDaemon(t, Config{Name: "alice-laptop", DataDir: mdir, API: "127.0.0.2:0", Gossip: "127.0.0.2:0", Overlay: "127.0.0.2:0", Join: []string{seed}}, slog.New(slog.DiscardHandler))
	waitUntil(t, "c1 to refuse the restarted removed node", func() bool { return removedCalls() > before })
	if n := c1.enroll.refused.Count("bob-laptop", "wrong_node"); n != 1 {
		t.Errorf("refused enrolments of bob-laptop for wrong_node: %d, want 1", n)
	}
	if n := c1.enroll.refused.Count("alice-laptop", "no_invite"); n != 1 {
		t.Errorf("refused enrolments of alice-laptop for no_invite: %d, want 1", n)
	}
	// Loopback development enrolment (no token) of a removed name is
	// refused; a new invite lets it back in.
	if err := enrollDirect(ctx, t, c1, "alice-laptop", ""); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "removed") {
		t.Errorf("Enroll of a removed node without an invite: %v; want PermissionDenied saying it was removed", err)
	}
	inv2, err := nodes.CreateNodeInvite(ctx, &labv1.CreateNodeInviteRequest{NodeId: "alice-laptop", Owner: "users/alice"})
	if err != nil {
		t.Fatal(err)
	}
	tok2, _ := auth.ParseEnrollToken(inv2.Token)
	if err := enrollDirect(ctx, t, c1, "alice-laptop", tok2.Key); err != nil {
		t.Errorf("Enroll of a removed node with a new invite: %v", err)
	}
	if id, _ := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "alice-laptop"); id.Removed {
		t.Errorf("alice-laptop's identity after a new invite was used: %+v; want not removed", id)
	}
}

// enrollDirect calls Enroll on d, pinned to its CA, as node with token.
func enrollDirect(ctx context.Context, t *testing.T, d *Daemon, node, token string) error {
	return enrollDirectB(ctx, t, d, node, token)
}

func enrollDirectB(ctx context.Context, t testing.TB, d *Daemon, node, token string) error {
	t.Helper()
	conn, err := grpc.NewClient(d.api.lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(auth.PinnedTLS(d.pki.caHash(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key, err := auth.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := auth.NewNodeCSR(key, node, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = labv1.NewControlServiceClient(conn).Enroll(ctx, &labv1.EnrollRequest{Node: node, Csr: csr, Token: token}, grpc.WaitForReady(true))
	return err
}

// BenchmarkEnrolInvited30: an admin invites 30 nodes and each enrols
// with its token at the control node (invite, key, request, signature,
// identity record through raft): the time for the class of 30.
func BenchmarkEnrolInvited30(b *testing.B) {
	for range b.N {
		b.StopTimer()
		c1, err := New(Config{Name: "c1", DataDir: b.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", Control: true}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c1.Run(ctx) }()
		for !c1.control.isLeader() {
			time.Sleep(10 * time.Millisecond)
		}
		b.StartTimer()
		for k := range 30 {
			name := "student-" + string(rune('a'+k/26)) + string(rune('a'+k%26))
			inv, err := c1.api.srv.CreateNodeInvite(ctx, &labv1.CreateNodeInviteRequest{NodeId: name})
			if err != nil {
				b.Fatal(err)
			}
			tok, err := auth.ParseEnrollToken(inv.Token)
			if err != nil {
				b.Fatal(err)
			}
			if err := enrollDirectB(ctx, b, c1, name, tok.Key); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cancel()
		<-done
		c1.Close()
	}
}

// TestRemovedNodeBackWithInvite: a member an admin removed learns it from
// its Follow stream and keeps the mark; restarted with the invite it was
// enrolled with (used up) it runs as removed and says what brings it
// back; restarted with a new invite and the same data directory it
// enrols again with a new key, drops the mark and is followed again: no
// file to delete by hand.
func TestRemovedNodeBackWithInvite(t *testing.T) {
	seed := gossipPort(t)
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true}, slog.New(slog.DiscardHandler))
	nodes := labv1.NewNodeServiceClient(dialAdmin(t, c1, c1))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	invite := func() string {
		t.Helper()
		inv, err := nodes.CreateNodeInvite(ctx, &labv1.CreateNodeInviteRequest{NodeId: "alice-laptop"})
		if err != nil {
			t.Fatal(err)
		}
		return inv.Token
	}
	mdir := t.TempDir()
	cfg := Config{Name: "alice-laptop", DataDir: mdir, API: "127.0.0.2:0", Gossip: "127.0.0.2:0", Overlay: "127.0.0.2:0", Join: []string{seed}, Enroll: invite()}
	a1, stop := runDaemon(t, cfg, slog.New(slog.DiscardHandler))
	waitUntil(t, "alice-laptop enrolled", a1.pki.hasCert)
	first := a1.pki.serial()
	if _, err := nodes.RemoveNode(ctx, &labv1.RemoveNodeRequest{Name: "nodes/alice-laptop"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "alice-laptop to learn it was removed", a1.removed.is)
	stop()

	// The same command: the invite is used up.
	var logs syncBuffer
	a2, stop := runDaemon(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	waitUntil(t, "the refused invite to be logged", func() bool { return strings.Contains(logs.String(), "its --enroll invite was refused") })
	if !a2.removed.is() || a2.pki.serial() != first {
		t.Errorf("restarted with its used invite: removed %v, serial %s (was %s); want removed, the old certificate", a2.removed.is(), a2.pki.serial(), first)
	}
	stop()

	// A new invite, the same data directory.
	cfg.Enroll = invite()
	a3, _ := runDaemon(t, cfg, slog.New(slog.DiscardHandler))
	waitUntil(t, "alice-laptop enrolled again", func() bool { s := a3.pki.serial(); return s != "" && s != first })
	if a3.removed.is() {
		t.Error("enrolled again with a new invite, the node still counts itself removed")
	}
	if _, err := os.Stat(filepath.Join(mdir, removedMarkFile)); !os.IsNotExist(err) {
		t.Errorf("DATA/%s after enrolling again: %v; want it gone", removedMarkFile, err)
	}
	id, _ := lab.GetNodeIdentity(lab.StoreGetter{St: c1.store}, "alice-laptop")
	if id.Removed || id.Serial != a3.pki.serial() {
		t.Errorf("alice-laptop's record after enrolling again: %+v; want not removed, serial %s", id, a3.pki.serial())
	}
	// c1 follows it again: its replica catches up with a write made now.
	if _, err := c1.control.Update(ctx, func(tx *store.Tx) error {
		return lab.PutUser(tx, lab.User{ID: "carol", Role: auth.Student})
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "alice-laptop's replica to follow c1 again", func() bool {
		_, ok := lab.GetUser(lab.StoreGetter{St: a3.store}, "carol")
		return ok
	})
}
