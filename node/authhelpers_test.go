package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
)

// bearer is a token sent with every call (per-RPC credentials), as
// labctl sends it; plaintext is allowed as the tests dial loopback.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// adminToken is the token the node that formed the control plane wrote
// to its data directory (admin.token), once it is there.
func adminToken(t *testing.T, boot *Daemon) string {
	t.Helper()
	return adminTokenIn(t, boot.cfg.DataDir)
}

// adminTokenIn is the token in data directory dir's admin.token, once it
// is there.
func adminTokenIn(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, adminTokenFile)
	var token string
	waitUntil(t, "admin.token", func() bool {
		b, err := os.ReadFile(path)
		token = strings.TrimSpace(string(b))
		return err == nil && token != ""
	})
	return token
}

// dialAdmin dials d's API in plaintext over loopback with the admin's
// token of boot, the node that formed the control plane, once d's replica
// holds that token (so d can check it).
func dialAdmin(t *testing.T, d, boot *Daemon) *grpc.ClientConn {
	t.Helper()
	token := adminToken(t, boot)
	id, _, err := identity.ParseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, d.cfg.Name+" to hold the admin's token", func() bool {
		_, ok := lab.GetToken(lab.StoreGetter{St: d.store}, id)
		return ok
	})
	conn, err := grpc.NewClient(d.api.lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(token)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
