package node

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestMemberCannotForwardUsers: a rogue with root on member m1, holding
// its certificate, calls the control node over m1's own mutual TLS
// naming the admin as the user it forwards for: refused and counted
// (member_forwarded_user). Passing on alice's own token works, as alice
// via m1, and only as far as alice may go.
func TestMemberCannotForwardUsers(t *testing.T) {
	key := []byte("class key")
	seed := gossipPort(t)
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true, Key: key}, slog.New(slog.DiscardHandler))
	m1, _ := runDaemon(t, Config{Name: "m1", DataDir: t.TempDir(), API: "127.0.0.3:0", Gossip: "127.0.0.3:0", Overlay: "127.0.0.3:0", Join: []string{seed}, Key: key}, slog.New(slog.DiscardHandler))
	waitUntil(t, "m1 enrolled", m1.pki.hasCert)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token, id, hash := identity.NewToken()
	if _, err := c1.control.Update(ctx, func(tx *store.Tx) error {
		if err := lab.PutUser(tx, lab.User{ID: "alice", Role: auth.Student}); err != nil {
			return err
		}
		return lab.PutToken(tx, auth.Token{ID: id, User: "alice", Kind: auth.Session, Hash: hash})
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "c1 sees m1 alive", func() bool { _, ok := c1.control.member("m1"); return ok })
	conn, err := m1.api.peers.dial("c1") // m1's certificate
	if err != nil {
		t.Fatal(err)
	}
	au := labv1.NewAuthServiceClient(conn)
	forged := metadata.AppendToOutgoingContext(ctx, auth.ForwardedUserKey, "admin", auth.ForwardedByKey, "m1")
	_, err = au.WhoAmI(forged, &labv1.WhoAmIRequest{})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "node m1 is a member") {
		t.Errorf("m1 forwards a call as admin: %v; want PermissionDenied saying m1 is a member", err)
	}
	refused := func() (n uint64) {
		c1.api.auth.Refused(func(node, reason string, c uint64) bool {
			if node == "m1" && reason == "member_forwarded_user" {
				n = c
			}
			return true
		})
		return n
	}
	if refused() != 1 {
		t.Errorf("member_forwarded_user refusals of m1: %d, want 1", refused())
	}
	who, err := au.WhoAmI(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), &labv1.WhoAmIRequest{})
	if err != nil || who.GetUser() != "users/alice" {
		t.Errorf("m1 passes on alice's token: %v, %v; want alice", who, err)
	}
	_, err = labv1.NewNodeServiceClient(conn).CreateNodeInvite(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), &labv1.CreateNodeInviteRequest{NodeId: "evil"})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("alice via m1 invites a node: %v; want PermissionDenied", err)
	}
}
