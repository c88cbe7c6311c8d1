package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
)

// TestBootstrapAdmin: a new control plane gets user admin and a token
// that does not expire, in DATA/admin.token (0600), before labd says it
// is ready; a restart makes no other; the log says where the token is
// and never what it is.
func TestBootstrapAdmin(t *testing.T) {
	var logs syncBuffer
	cfg := Config{Control: true, Name: "boot", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}
	d, stop := runDaemon(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	waitUntil(t, "labd ready", func() bool { return strings.Contains(logs.String(), "labd ready") })
	path := filepath.Join(cfg.DataDir, adminTokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no admin.token once ready: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.token mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(b))
	id, secret, err := identity.ParseToken(token)
	if err != nil {
		t.Fatalf("admin.token: %v", err)
	}
	u, ok := lab.GetUser(lab.StoreGetter{St: d.store}, adminUser)
	tok, tokOK := lab.GetToken(lab.StoreGetter{St: d.store}, id)
	if !ok || u.Role != auth.Admin || !tokOK || tok.User != adminUser || tok.Kind != auth.Session || !tok.Expires.IsZero() || !tok.Matches(secret) {
		t.Fatalf("user %+v %v, token %+v %v: want admin with a session token that does not expire", u, ok, tok, tokOK)
	}
	if d.store.AppliedIndex() == 0 {
		t.Error("the admin was written outside the control plane")
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the log holds the admin's token")
	}
	if !strings.Contains(logs.String(), path) {
		t.Errorf("the log does not say where the token is:\n%s", logs.String())
	}
	stop()

	d, _ = runDaemon(t, cfg, slog.New(slog.DiscardHandler))
	if n := len(lab.ListTokens(d.store, "")); n != 1 {
		t.Errorf("%d tokens after a restart, want 1", n)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Error("admin.token rewritten by a restart")
	}
}

// TestBootstrapAdminFromFile: with --admin-token-file the admin's token is
// that one, and nothing is written to the data directory.
func TestBootstrapAdminFromFile(t *testing.T) {
	token, id, _ := identity.NewToken()
	var logs syncBuffer
	cfg := Config{Control: true, Name: "boot", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", AdminToken: token}
	d, _ := runDaemon(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	waitUntil(t, "labd ready", func() bool { return strings.Contains(logs.String(), "labd ready") })
	_, secret, _ := identity.ParseToken(token)
	if tok, ok := lab.GetToken(lab.StoreGetter{St: d.store}, id); !ok || tok.User != adminUser || !tok.Matches(secret) {
		t.Errorf("token %+v %v: want the file's, the admin's", tok, ok)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, adminTokenFile)); !os.IsNotExist(err) {
		t.Errorf("admin.token written with --admin-token-file: %v", err)
	}
}
