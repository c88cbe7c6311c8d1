package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/control"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
)

// signedAt is a certificate of ca for node, signed at the given time.
func signedAt(t *testing.T, ca *auth.CA, node string, at time.Time) *x509.Certificate {
	t.Helper()
	key, err := auth.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := auth.NewNodeCSR(key, node, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca.Now = func() time.Time { return at }
	der, err := ca.SignNode(csr, node, true)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestRaftAllow: raft refuses a removed or demoted control node and a
// certificate older than its record's; it admits one with no record yet
// (a CA holder's own) and one newer than its record's (a renewal not
// recorded yet).
func TestRaftAllow(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{Origin: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ca, err := auth.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := signedAt(t, ca, "c2", now.Add(-time.Hour))
	cur := signedAt(t, ca, "c2", now)
	renewed := signedAt(t, ca, "c2", now.Add(time.Hour))
	gone := signedAt(t, ca, "gone", now)
	demoted := signedAt(t, ca, "c3", now)
	fresh := signedAt(t, ca, "c4", now)
	if _, err := st.Update(func(tx *store.Tx) error {
		for _, c := range []*x509.Certificate{cur, gone, demoted} {
			id, err := identityOf(c.Subject.CommonName, c.Raw)
			if err != nil {
				return err
			}
			id.Removed = c == gone
			if err := lab.PutNodeIdentity(tx, id); err != nil {
				return err
			}
		}
		lab.SetDemoted(tx, "c3", true)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	allow := raftAllow(st)
	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate
		reason string // "" admitted
	}{
		{"the recorded certificate", cur, ""},
		{"a renewal not recorded yet", renewed, ""},
		{"no record yet", fresh, ""},
		{"an older certificate", old, "old_certificate"},
		{"removed", gone, "removed"},
		{"demoted", demoted, "demoted"},
	} {
		node, _ := auth.NodeOf(tc.cert)
		err := allow(node, tc.cert)
		var r *control.RefusedError
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.reason != "" && (!errors.As(err, &r) || r.Reason != tc.reason):
			t.Errorf("%s: %v, want refused for %s", tc.name, err, tc.reason)
		}
	}
}

// TestRaftRefusesMember: a member of a cluster with a cluster key (issue
// 13's model: every member holds it), using every credential it has (its
// node certificate, the cluster key), cannot speak raft to the control
// node: each connection is closed before raft reads a byte and counted,
// and the control node goes on leading in the same term.
func TestRaftRefusesMember(t *testing.T) {
	key := []byte("class key")
	seed := gossipPort(t)
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true, Key: key}, slog.New(slog.DiscardHandler))
	var logs syncBuffer
	m1, _ := runDaemon(t, Config{Name: "m1", DataDir: t.TempDir(), API: "127.0.0.3:0", Gossip: "127.0.0.3:0", Overlay: "127.0.0.3:0", Join: []string{seed}, Key: key}, slog.New(slog.NewTextHandler(&logs, nil)))
	waitUntil(t, "m1 ready", func() bool { return strings.Contains(logs.String(), "labd ready") })
	waitUntil(t, "c1 to lead", c1.control.isLeader)
	term := c1.control.ctl.Term()

	cert, caCert, err := m1.pki.raftCredentials()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	raftAddr := c1.control.raftAddr()
	local := &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}
	dialer := &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	// What raft would send first: an AppendEntries (rpcAppendEntries is 0)
	// from a leader of a much higher term.
	appendEntries := []byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for _, tc := range []struct {
		name, node, reason string
		dial               func() (net.Conn, error)
	}{
		{"m1's certificate", "m1", "not_control", func() (net.Conn, error) {
			return tls.DialWithDialer(dialer, "tcp", raftAddr, &tls.Config{Certificates: []tls.Certificate{*cert}, RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
		}},
		{"no certificate", "127.0.0.3", "no_certificate", func() (net.Conn, error) {
			return tls.DialWithDialer(dialer, "tcp", raftAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
		}},
		{"plain TCP, as issue 13's raft with the cluster key", "127.0.0.3", "handshake", func() (net.Conn, error) {
			return dialer.Dial("tcp", raftAddr)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if tc.reason == "handshake" {
				c.Write(append([]byte("LRA1"), make([]byte, 32)...))
			} else {
				c.Write(appendEntries)
			}
			if b, err := io.ReadAll(c); err == nil && len(b) > 0 {
				t.Errorf("the control node answered %x", b)
			}
			waitUntil(t, "the refusal counted", func() bool {
				n := uint64(0)
				c1.control.ctl.Refused(func(node, reason string, count uint64) bool {
					if node == tc.node && reason == tc.reason {
						n = count
					}
					return true
				})
				return n > 0
			})
		})
	}
	if !c1.control.isLeader() || c1.control.ctl.Term() != term {
		t.Errorf("c1 leads %v in term %d, want still leading in term %d", c1.control.isLeader(), c1.control.ctl.Term(), term)
	}
}

// TestMemberRestartedAsControl: a member restarted with --control enrols
// again for a control node's certificate (raft refuses a member's), and
// only then does the leader add it as a voter; writes go on meanwhile.
func TestMemberRestartedAsControl(t *testing.T) {
	key := []byte("class key")
	seed := gossipPort(t)
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true, Key: key}, slog.New(slog.DiscardHandler))
	mcfg := Config{Name: "m1", DataDir: t.TempDir(), API: "127.0.0.3:0", Gossip: "127.0.0.3:0", Overlay: "127.0.0.3:0", Join: []string{seed}, Key: key}
	var logs syncBuffer
	_, stop := runDaemon(t, mcfg, slog.New(slog.NewTextHandler(&logs, nil)))
	waitUntil(t, "m1 ready", func() bool { return strings.Contains(logs.String(), "labd ready") })
	stop()
	_, cert, err := auth.LoadNodeCert(mcfg.DataDir)
	if err != nil || auth.NodeKind(cert) != auth.KindMember {
		t.Fatalf("m1's certificate as a member: %v, kind %q", err, auth.NodeKind(cert))
	}

	mcfg.Control = true
	var logs2 syncBuffer
	m1, _ := runDaemon(t, mcfg, slog.New(slog.NewTextHandler(&logs2, nil)))
	waitUntil(t, "m1 a voter", func() bool { return len(c1.control.ctl.Servers()) == 2 })
	if !strings.Contains(logs2.String(), "enrolled") {
		t.Errorf("m1 did not enrol again:\n%s", logs2.String())
	}
	if got := auth.NodeKind(m1.pki.certLeaf(t)); got != auth.KindControl {
		t.Errorf("m1's certificate is of kind %q, want control", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c1.control.Update(ctx, func(tx *store.Tx) error { tx.Put("test/after", []byte("1")); return nil }); err != nil {
		t.Fatalf("a write with m1 a voter: %v", err)
	}
	waitUntil(t, "m1 to hold the write", func() bool { _, ok := m1.store.Get("test/after"); return ok })
}

// certLeaf is the node's certificate, parsed.
func (p *pki) certLeaf(t *testing.T) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(p.certDER())
	if err != nil {
		t.Fatal(err)
	}
	return c
}
