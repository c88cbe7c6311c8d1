package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// FuzzBearer feeds the authorization and forwarding metadata of a call
// from a client and from a node to the principal's derivation: it never
// panics, refuses with Unauthenticated or PermissionDenied only, and
// accepts nothing but the one valid token or a user who exists.
func FuzzBearer(f *testing.F) {
	dir := newFakeDir()
	tok, id := dir.token("alice", Student, Session, time.Time{})
	f.Add("Bearer "+tok, "", id)
	f.Add("bearer  "+tok+" ", "alice", "")
	f.Add("Bearer lnt_"+id+"_"+strings.Repeat("a", 52), "bob", id)
	f.Add("Bearer lnt_", "", "x")
	f.Add("Basic", "alice\x00", "")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, authz, user, tokenID string) {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{authorizationKey: {authz}})
		p, err := authenticate(ctx, dir, testNow, nodeCheck{})
		if err != nil {
			if c := status.Code(err); c != codes.Unauthenticated {
				t.Fatalf("%q: code %v", authz, c)
			}
		} else {
			scheme, rest, _ := strings.Cut(strings.TrimSpace(authz), " ")
			if !strings.EqualFold(scheme, "bearer") || strings.TrimLeft(rest, " ") != tok || p.User != "alice" || p.TokenID != id {
				t.Fatalf("%q accepted as %+v", authz, p)
			}
		}
		md := metadata.MD{ForwardedUserKey: {user}}
		if tokenID != "" {
			md[ForwardedTokenKey] = []string{tokenID}
		}
		ctx = metadata.NewIncomingContext(context.Background(), md)
		if _, err := authenticate(ctx, dir, testNow, nodeCheck{}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("forwarding metadata from a client: %v", err)
		}
		p, err = forwardedPrincipal(dir, md, "n1", testNow)
		if err != nil {
			if c := status.Code(err); c != codes.Unauthenticated {
				t.Fatalf("forwarded %q: code %v", user, c)
			}
			return
		}
		if p.User != "alice" || p.Via != "n1" || (tokenID != "" && tokenID != id) {
			t.Fatalf("forwarded %q, %q accepted as %+v", user, tokenID, p)
		}
	})
}

// BenchmarkUnaryAuth is the interceptor's cost per unary call with a
// token: "direct" calls the interceptor with a handler that does nothing
// (its own overhead), "grpc" a GetHost over an in-memory connection with
// TLS, with and without the interceptor.
func BenchmarkUnaryAuth(b *testing.B) {
	e := newEnv(b)
	tok, _ := e.dir.token("alice", Student, Session, time.Time{})
	e.dir.setLab("a", LabInfo{Owner: "alice"})
	req := &labv1.GetHostRequest{Name: "labs/a/hosts/h1"}

	b.Run("direct", func(b *testing.B) {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
		info := &grpc.UnaryServerInfo{FullMethod: labSvc + "GetHost"}
		handler := func(context.Context, any) (any, error) { return nil, nil }
		in := e.ic.Unary()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := in(ctx, req, info, handler); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("grpc/token", func(b *testing.B) {
		lab := labv1.NewLabServiceClient(e.conn(""))
		ctx := withToken(context.Background(), tok)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := lab.GetHost(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("grpc/none", func(b *testing.B) {
		// The same server without the interceptor.
		lab := labv1.NewLabServiceClient(e.noAuth())
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := lab.GetHost(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
