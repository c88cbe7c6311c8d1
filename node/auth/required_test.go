package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/identity"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestRequiredIdentity: once this node's own identity record is in its
// replica, a node certificate without a record is refused (unknown_node)
// but for RecordIdentity, which is how it gets one; a newer certificate
// than the record's may only record itself; an older one is refused.
func TestRequiredIdentity(t *testing.T) {
	e := newEnv(t)
	e.ic.self = "n1"
	ctx := ctxT(t)
	cert := e.ca.leaf(t, "m1")
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	conn := e.dial(credsWith(e, cert), e.lis)
	ctl := labv1.NewControlServiceClient(conn)
	follow := func() error {
		st, err := ctl.Follow(ctx, &labv1.FollowRequest{Node: "m1"})
		if err == nil {
			_, err = st.Recv()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	record := func() error {
		_, err := ctl.RecordIdentity(ctx, &labv1.RecordIdentityRequest{})
		if status.Code(err) == codes.Unimplemented { // the fake services: the interceptor let it through
			return nil
		}
		return err
	}
	setNode := func(name string, n identity.NodeInfo) {
		e.dir.mu.Lock()
		defer e.dir.mu.Unlock()
		e.dir.nodes[name] = n
	}

	// This node has no record yet: nothing is required.
	if err := follow(); err != nil {
		t.Errorf("Follow of a node without a record, not required yet: %v", err)
	}
	setNode("n1", identity.NodeInfo{Serial: "1"})
	wantCode(t, "Follow without a record", follow(), codes.PermissionDenied, "no identity record here yet", "try again")
	if n := e.ic.refused.Count("m1", "unknown_node"); n != 1 {
		t.Errorf("unknown_node refusals: %d, want 1", n)
	}
	if err := record(); err != nil {
		t.Errorf("RecordIdentity without a record: %v", err)
	}

	// A record of an older certificate: this one may record itself only.
	setNode("m1", identity.NodeInfo{Serial: "abc", NotBefore: leaf.NotBefore.Add(-time.Minute)})
	wantCode(t, "Follow with a newer certificate", follow(), codes.PermissionDenied, "newer than the one its identity names")
	if err := record(); err != nil {
		t.Errorf("RecordIdentity with a newer certificate: %v", err)
	}
	// A record of a newer certificate: this one is old.
	setNode("m1", identity.NodeInfo{Serial: "abc", NotBefore: leaf.NotBefore.Add(time.Minute)})
	wantCode(t, "Follow with an old certificate", follow(), codes.PermissionDenied, "it was replaced")
	wantCode(t, "RecordIdentity with an old certificate", record(), codes.PermissionDenied, "it was replaced")
	// Its own record, then removed.
	setNode("m1", identity.NodeInfo{Serial: leaf.SerialNumber.Text(16), NotBefore: leaf.NotBefore})
	if err := follow(); err != nil {
		t.Errorf("Follow with its record: %v", err)
	}
	setNode("m1", identity.NodeInfo{Serial: leaf.SerialNumber.Text(16), NotBefore: leaf.NotBefore, Removed: true})
	wantCode(t, "RecordIdentity of a removed node", record(), codes.PermissionDenied, "removed")
}

// credsWith are TLS client credentials presenting cert to e's server.
func credsWith(e *env, cert tls.Certificate) credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{RootCAs: e.ca.pool, ServerName: "labd", MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})
}
