package control

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/labnet-dev/labnet/node/auth"
)

func newTestCA(t testing.TB) *auth.CA {
	t.Helper()
	ca, err := auth.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// nodeCert is a certificate of ca for node, of kind control or member.
func nodeCert(t testing.TB, ca *auth.CA, node string, control bool) *tls.Certificate {
	t.Helper()
	key, err := auth.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := auth.NewNodeCSR(key, node, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignNode(csr, node, control)
	if err != nil {
		t.Fatal(err)
	}
	c, err := auth.TLSCertificate(key, der, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// tlsWith is a TLS with a fixed certificate of ca.
func tlsWith(ca *auth.CA, cert *tls.Certificate, allow func(string, *x509.Certificate) error) *TLS {
	return &TLS{
		Credentials: func() (*tls.Certificate, *x509.Certificate, error) { return cert, ca.Cert, nil },
		Allow:       allow,
	}
}

// controlTLS is a control node's TLS with a certificate of ca.
func controlTLS(t testing.TB, ca *auth.CA, node string, allow func(string, *x509.Certificate) error) *TLS {
	return tlsWith(ca, nodeCert(t, ca, node, true), allow)
}

// listen is a stream layer on ip (a 127.0.0.x address).
func listen(t *testing.T, ip string, tl *TLS) *streamLayer {
	t.Helper()
	s, err := newStreamLayer(net.JoinHostPort(ip, "0"), "", tl, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// exchange dials from d to a and, on a's side, reads what the dialler
// sends (which runs a's handshake, as raft's first read does). It
// returns Dial's error and the accepting side's.
func exchange(t *testing.T, d, a *streamLayer) (dialErr, acceptErr error) {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		c, err := a.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		var b [4]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			got <- handshakeErr(c, err)
			return
		}
		if string(b[:]) != "raft" {
			got <- errors.New("read " + string(b[:]))
			return
		}
		got <- nil
	}()
	c, dialErr := d.Dial(raft.ServerAddress(a.Addr().String()), 5*time.Second)
	if dialErr == nil {
		c.Write([]byte("raft"))
		defer c.Close()
	}
	select {
	case acceptErr = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the accepting side neither accepted nor refused")
	}
	return dialErr, acceptErr
}

// handshakeErr is why an accepted connection's read failed: its
// handshake's error (raft's read sees io.EOF), else err.
func handshakeErr(c net.Conn, err error) error {
	if a, ok := c.(*authConn); ok && a.err != nil {
		return a.err
	}
	return err
}

// refusedOnly checks that s counted exactly one refusal: node's, for
// reason.
func refusedOnly(t *testing.T, side string, s *streamLayer, node, reason string) {
	t.Helper()
	var all []string
	s.refused.All(func(n, r string, count uint64) bool {
		all = append(all, n+"/"+r)
		return true
	})
	if len(all) != 1 || s.refused.Count(node, reason) != 1 {
		t.Errorf("%s counted %v, want one %s/%s", side, all, node, reason)
	}
}

func refusedNone(t *testing.T, side string, s *streamLayer) {
	t.Helper()
	s.refused.All(func(n, r string, count uint64) bool {
		t.Errorf("%s counted %d refused %s/%s", side, count, n, r)
		return true
	})
}

// TestTLSControlNodesConnect: two control certificates of the cluster CA
// connect, over real TCP on two loopback addresses, in both directions.
func TestTLSControlNodesConnect(t *testing.T) {
	ca := newTestCA(t)
	a := listen(t, "127.0.0.1", controlTLS(t, ca, "a", nil))
	b := listen(t, "127.0.0.2", controlTLS(t, ca, "b", nil))
	for _, p := range [][2]*streamLayer{{a, b}, {b, a}} {
		if dErr, aErr := exchange(t, p[0], p[1]); dErr != nil || aErr != nil {
			t.Fatalf("dial %v, accept %v", dErr, aErr)
		}
	}
	refusedNone(t, "a", a)
	refusedNone(t, "b", b)
}

// TestTLSRefusesMember: a member's certificate of the same CA is refused,
// whichever side presents it, and counted by the side that refused it.
func TestTLSRefusesMember(t *testing.T) {
	ca := newTestCA(t)
	control := listen(t, "127.0.0.1", controlTLS(t, ca, "teacher", nil))
	member := listen(t, "127.0.0.3", tlsWith(ca, nodeCert(t, ca, "alice-laptop", false), nil))

	dErr, aErr := exchange(t, member, control)
	if !errors.Is(dErr, ErrRefusedByPeer) {
		t.Errorf("member dialling: %v, want refused by the peer", dErr)
	}
	var r *RefusedError
	if !errors.As(aErr, &r) || r.Reason != "not_control" || r.Node != "alice-laptop" {
		t.Errorf("control accepting a member: %v, want not_control", aErr)
	}
	refusedOnly(t, "the control node", control, "alice-laptop", "not_control")
	refusedOnly(t, "the member", member, "127.0.0.1", "refused_by_peer")

	control.refused, member.refused = auth.NodeRefusals{}, auth.NodeRefusals{}
	dErr, aErr = exchange(t, control, member)
	if !errors.As(dErr, &r) || r.Reason != "not_control" {
		t.Errorf("control dialling a member: %v, want not_control", dErr)
	}
	if aErr == nil {
		t.Error("the member accepted")
	}
	refusedOnly(t, "the control node", control, "alice-laptop", "not_control")
}

// TestTLSRefusesOtherCA: a control certificate of another CA is refused
// by either side; the node it names is not believed (the address is
// counted).
func TestTLSRefusesOtherCA(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	control := listen(t, "127.0.0.1", controlTLS(t, ca, "teacher", nil))
	rogue := listen(t, "127.0.0.4", controlTLS(t, other, "teacher", nil))
	// The rogue's own dialler would refuse our server first (TLS 1.3's
	// client checks the server's certificate before it sends its own):
	// one that does not, as a rogue would write.
	rogueCert := nodeCert(t, other, "teacher", true)
	aErr := acceptOne(t, control, func(addr string) (net.Conn, error) {
		return tls.Dial("tcp", addr, &tls.Config{Certificates: []tls.Certificate{*rogueCert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	})
	var r *RefusedError
	if !errors.As(aErr, &r) || r.Reason != "bad_certificate" {
		t.Errorf("accepting another CA's certificate: %v, want bad_certificate", aErr)
	}
	refusedOnly(t, "the control node", control, "127.0.0.1", "bad_certificate")

	control.refused = auth.NodeRefusals{}
	if dErr, _ := exchange(t, control, rogue); !errors.As(dErr, &r) || r.Reason != "bad_certificate" {
		t.Errorf("dialling a server of another CA: %v, want bad_certificate", dErr)
	}
	refusedOnly(t, "the control node dialling", control, "127.0.0.4", "bad_certificate")
	if dErr, _ := exchange(t, rogue, control); dErr == nil {
		t.Error("the rogue's dial succeeded")
	}
}

// acceptOne accepts one connection on s that dial makes, sends it what
// raft would send first (an AppendEntries, rpcAppendEntries being 0,
// with a higher term) and returns why the accepting side's first read
// failed; it fails the test if raft read a byte, or saw more than EOF.
func acceptOne(t *testing.T, s *streamLayer, dial func(addr string) (net.Conn, error)) error {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		c, err := s.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		_, err = c.Read(make([]byte, 1))
		if err != nil && err != io.EOF {
			// raft logs every read error but io.EOF, once per connection:
			// the refusal is logged by the stream layer, rate-limited.
			t.Errorf("raft's read failed with %v, want io.EOF", err)
		}
		got <- handshakeErr(c, err)
	}()
	c, err := dial(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("raft read a byte")
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the accepting side neither accepted nor refused")
		return nil
	}
}

// TestTLSRefusesNoCertificate: a TLS client with no certificate, and one
// that does not speak TLS, are refused before raft reads a byte.
func TestTLSRefusesNoCertificate(t *testing.T) {
	ca := newTestCA(t)
	control := listen(t, "127.0.0.1", controlTLS(t, ca, "teacher", nil))
	for _, tc := range []struct {
		name, reason string
		dial         func(addr string) (net.Conn, error)
	}{
		{"no certificate", "no_certificate", func(addr string) (net.Conn, error) {
			return tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		}},
		{"plain TCP", "handshake", func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			control.refused = auth.NodeRefusals{}
			err := acceptOne(t, control, tc.dial)
			var r *RefusedError
			if tc.reason != "handshake" && (!errors.As(err, &r) || r.Reason != tc.reason) {
				t.Errorf("refused with %v, want %s", err, tc.reason)
			}
			refusedOnly(t, "the control node", control, "127.0.0.1", tc.reason)
		})
	}
}

// TestTLSAllowRefuses: a node the callback refuses (removed, in labd) is
// refused with the callback's reason; others are not.
func TestTLSAllowRefuses(t *testing.T) {
	ca := newTestCA(t)
	allow := func(node string, cert *x509.Certificate) error {
		if node == "gone" {
			return &RefusedError{Reason: "removed", Err: errors.New("node gone was removed")}
		}
		if node == "odd" {
			return errors.New("no reason given")
		}
		return nil
	}
	control := listen(t, "127.0.0.1", controlTLS(t, ca, "teacher", allow))
	for _, tc := range []struct{ node, reason string }{{"gone", "removed"}, {"odd", "refused"}} {
		control.refused = auth.NodeRefusals{}
		peer := listen(t, "127.0.0.5", controlTLS(t, ca, tc.node, allow))
		dErr, aErr := exchange(t, peer, control)
		if !errors.Is(dErr, ErrRefusedByPeer) {
			t.Errorf("%s dialling: %v, want refused", tc.node, dErr)
		}
		var r *RefusedError
		if !errors.As(aErr, &r) || r.Reason != tc.reason || r.Node != tc.node {
			t.Errorf("%s accepted with %v, want %s", tc.node, aErr, tc.reason)
		}
		refusedOnly(t, "the control node", control, tc.node, tc.reason)
		// The dialling side asks too.
		control.refused = auth.NodeRefusals{}
		if dErr, _ := exchange(t, control, peer); !errors.As(dErr, &r) || r.Reason != tc.reason {
			t.Errorf("dialling %s: %v, want %s", tc.node, dErr, tc.reason)
		}
		refusedOnly(t, "the control node dialling", control, tc.node, tc.reason)
	}
}

// TestTLSCredentialsChange: the certificate is looked up per connection,
// so one the node gets while running (enrolment) applies to the next;
// before it has one, connections fail and nothing is counted against
// the peer.
func TestTLSCredentialsChange(t *testing.T) {
	ca := newTestCA(t)
	var cert *tls.Certificate
	joining := &TLS{Credentials: func() (*tls.Certificate, *x509.Certificate, error) {
		if cert == nil {
			return nil, nil, errors.New("no certificate yet")
		}
		return cert, ca.Cert, nil
	}}
	j := listen(t, "127.0.0.6", joining)
	leader := listen(t, "127.0.0.1", controlTLS(t, ca, "teacher", nil))
	if dErr, aErr := exchange(t, leader, j); dErr == nil || aErr == nil {
		t.Fatalf("a node without a certificate accepted: dial %v, accept %v", dErr, aErr)
	}
	refusedNone(t, "the joining node", j)
	cert = nodeCert(t, ca, "assistant", true)
	if dErr, aErr := exchange(t, leader, j); dErr != nil || aErr != nil {
		t.Fatalf("after enrolment: dial %v, accept %v", dErr, aErr)
	}
}

// TestPlainTCPOnLoopbackOnly: without TLS raft listens on loopback only.
func TestPlainTCPOnLoopbackOnly(t *testing.T) {
	_, err := newStreamLayer("0.0.0.0:0", "", nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("plain TCP on all addresses: %v, want refused", err)
	}
}

// TestTLSCluster: a raft cluster over TLS elects, replicates and counts
// nothing refused.
func TestTLSCluster(t *testing.T) {
	c := newCluster(t)
	ca := newTestCA(t)
	n1 := c.add(controlTLS(t, ca, "n1", nil))
	c.leader()
	n2 := c.add(controlTLS(t, ca, "n2", nil))
	c.join(n2)
	c.write("k", "v")
	c.converged(map[string]string{"k": "v"})
	if n1.c.RefusedConns() != 0 || n2.c.RefusedConns() != 0 {
		t.Errorf("refused %d, %d connections", n1.c.RefusedConns(), n2.c.RefusedConns())
	}
}
