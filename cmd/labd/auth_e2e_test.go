package main_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Every labd serves its API with auth on: the tests act as the admin
// whose token the node that formed the control plane wrote to its data
// directory (admin.token), as the README's quickstart does.

var (
	adminsMu sync.Mutex
	// admins maps a top-level test to the data directory of the node that
	// formed its cluster's control plane.
	admins = map[string]string{}
)

// adminData is the data directory holding the admin credential for a labd
// started on data with args: its own when it forms a control plane (no
// --join, or --bootstrap naming it), else that of the node of its test
// that did.
func adminData(t testing.TB, data string, args []string) string {
	test, _, _ := strings.Cut(t.Name(), "/")
	adminsMu.Lock()
	defer adminsMu.Unlock()
	name, boot := flagValue(args, "--name"), flagValue(args, "--bootstrap")
	if !slices.Contains(args, "--join") || boot != "" && boot == name {
		admins[test] = data
		return data
	}
	if a, ok := admins[test]; ok {
		return a
	}
	return data
}

// flagValue is the value of flag in args ("" when absent).
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// adminToken is the admin's token of d's cluster.
func (d *labd) adminToken() string {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.admin, "admin.token"))
	if err != nil {
		d.t.Fatalf("the admin's token: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// labctlEnv is labctl's environment for d: an empty config directory (the
// user's own labctl config is not read) and, for a server on loopback,
// LABD_DATA naming the admin's data directory, which labctl reads by
// itself; a server off loopback gets a context with the cluster's CA and
// the admin's token, as `labctl login` would save.
func (d *labd) labctlEnv() []string {
	d.t.Helper()
	cfgHome := filepath.Join(d.admin, "labctl-config-"+strings.NewReplacer(":", "_", "[", "", "]", "").Replace(d.api))
	env := []string{"XDG_CONFIG_HOME=" + cfgHome, "LABCTL_TOKEN=", "LABCTL_SERVER="}
	if isLoopbackAddr(d.api) {
		return append(env, "LABD_DATA="+d.admin)
	}
	ca, err := os.ReadFile(filepath.Join(d.admin, "ca.crt"))
	if err != nil {
		d.t.Fatalf("the cluster's CA: %v", err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "current-context: e2e\ncontexts:\n  - name: e2e\n    server: %q\n    token: %q\n    ca: |\n", d.api, d.adminToken())
	for _, line := range strings.Split(strings.TrimSpace(string(ca)), "\n") {
		cfg.WriteString("      " + line + "\n")
	}
	if err := os.MkdirAll(filepath.Join(cfgHome, "labctl"), 0o700); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgHome, "labctl", "config"), []byte(cfg.String()), 0o600); err != nil {
		d.t.Fatal(err)
	}
	return env
}

func isLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// bearer is a token sent with every call, as labctl sends it.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// dialAdmin dials d's API as the admin: plaintext on loopback, else TLS
// verified against the cluster's CA.
func (d *labd) dialAdmin() *grpc.ClientConn {
	d.t.Helper()
	creds := insecure.NewCredentials()
	if !isLoopbackAddr(d.api) {
		creds = credentials.NewTLS(d.clientTLS())
	}
	conn, err := grpc.NewClient(d.api, grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(bearer(d.adminToken())))
	if err != nil {
		d.t.Fatal(err)
	}
	return conn
}

// clientTLS verifies a server against the cluster's CA.
func (d *labd) clientTLS() *tls.Config {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.admin, "ca.crt"))
	if err != nil {
		d.t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		d.t.Fatal("ca.crt holds no PEM block")
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		d.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
}

// dialAsNode dials d's API with d's own node certificate (DATA/node.crt):
// the test makes a call only nodes may make (Follow) as d.
func (d *labd) dialAsNode() *grpc.ClientConn {
	d.t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(d.data, "node.crt"), filepath.Join(d.data, "node.key"))
	if err != nil {
		d.t.Fatalf("%s's node certificate: %v", d.data, err)
	}
	cfg := d.clientTLS()
	cfg.Certificates = []tls.Certificate{cert}
	conn, err := grpc.NewClient(d.api, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { conn.Close() })
	return conn
}
