package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// The fake AuthService: users and tokens in maps, and an interceptor on
// every call that records the method and the bearer token it carried
// (f.seen), and, with f.requireAuth, answers as labd's does: no token or an
// unknown one is Unauthenticated, a viewer's write PermissionDenied.

type fakeToken struct {
	name string // users/U/tokens/ID
	user string
	kind labv1.TokenKind
	desc string
}

type fakeCallerKey struct{}

// addUser adds a user and, when secret is not empty, a token of theirs.
func (f *fakeServer) addUser(user string, role labv1.Role, secret string, kind labv1.TokenKind) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[user] = role
	if secret != "" {
		f.tokens[secret] = fakeToken{name: "users/" + user + "/tokens/" + tokenID(secret), user: user, kind: kind}
	}
}

// seenCalls is "Method token" of every call the server received.
func (f *fakeServer) seenCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

func (f *fakeServer) authInterceptors() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := f.authenticate(ctx, info.FullMethod, req)
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if _, err := f.authenticate(ss.Context(), info.FullMethod, nil); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}

func (f *fakeServer) authenticate(ctx context.Context, method string, req any) (context.Context, error) {
	method = method[strings.LastIndexByte(method, '/')+1:]
	md, _ := metadata.FromIncomingContext(ctx)
	tok := ""
	if v := md.Get("authorization"); len(v) > 0 {
		tok = strings.TrimPrefix(v[0], "Bearer ")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, strings.TrimSpace(method+" "+tok))
	ft, known := f.tokens[tok]
	if known {
		ctx = context.WithValue(ctx, fakeCallerKey{}, ft)
	}
	switch {
	case !f.requireAuth || method == "Check":
		return ctx, nil
	case tok == "":
		return nil, status.Error(codes.Unauthenticated, "this call needs a token: run `labctl login` (or set LABCTL_TOKEN)")
	case !known:
		return nil, status.Error(codes.Unauthenticated, "the token is unknown or revoked: run `labctl login` again")
	case ft.kind == labv1.TokenKind_TOKEN_KIND_INVITE && method != "WhoAmI" && method != "Login":
		return nil, status.Error(codes.PermissionDenied, ft.user+" may not call "+method+": an invite token only logs in: run labctl login with it")
	}
	if n, ok := req.(interface{ GetName() string }); ok && f.users[ft.user] == labv1.Role_ROLE_VIEWER && strings.HasPrefix(method, "Delete") {
		return nil, status.Errorf(codes.PermissionDenied, "%s (viewer) may not delete %s:\nviewers only read", ft.user, n.GetName())
	}
	return ctx, nil
}

func caller(ctx context.Context) (fakeToken, error) {
	ft, ok := ctx.Value(fakeCallerKey{}).(fakeToken)
	if !ok {
		return ft, status.Error(codes.Unauthenticated, "this call needs a token: run `labctl login` (or set LABCTL_TOKEN)")
	}
	return ft, nil
}

func (f *fakeServer) WhoAmI(ctx context.Context, _ *labv1.WhoAmIRequest) (*labv1.WhoAmIResponse, error) {
	ft, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &labv1.WhoAmIResponse{User: "users/" + ft.user, Role: f.users[ft.user],
		Token: &labv1.Token{Name: ft.name, Kind: ft.kind, ExpireTime: timestamppb.New(t0.Add(30 * 24 * time.Hour))}}, nil
}

func (f *fakeServer) Login(ctx context.Context, req *labv1.LoginRequest) (*labv1.LoginResponse, error) {
	ft, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if ft.kind != labv1.TokenKind_TOKEN_KIND_INVITE {
		return nil, status.Error(codes.PermissionDenied, "Login takes an invite token")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s, t := range f.tokens {
		if t == ft {
			delete(f.tokens, s)
		}
	}
	secret := f.newSecretLocked()
	t := fakeToken{name: "users/" + ft.user + "/tokens/" + tokenID(secret), user: ft.user, kind: labv1.TokenKind_TOKEN_KIND_SESSION, desc: req.GetDescription()}
	f.tokens[secret] = t
	f.calls = append(f.calls, fmt.Sprintf("Login %s ttl=%s %q", ft.user, req.GetTtl().AsDuration(), req.GetDescription()))
	return &labv1.LoginResponse{Token: &labv1.Token{Name: t.name, Kind: t.kind}, Secret: secret}, nil
}

// newSecretLocked is a token "lnt_" + 10-character id + "_" + secret;
// f.mu is held.
func (f *fakeServer) newSecretLocked() string {
	f.nextToken++
	return fmt.Sprintf("lnt_tok%07d_%052d", f.nextToken, f.nextToken)
}

func (f *fakeServer) CanI(ctx context.Context, req *labv1.CanIRequest) (*labv1.CanIResponse, error) {
	f.record(fmt.Sprintf("CanI %s %s %s", req.GetVerb(), req.GetResource(), req.GetUser()))
	if req.GetResource() == "labs/other" && req.GetVerb() != "get" {
		return &labv1.CanIResponse{Reason: "alice (student) may not " + req.GetVerb() + " labs/other: the lab is bob's"}, nil
	}
	return &labv1.CanIResponse{Allowed: true}, nil
}

func (f *fakeServer) CreateUser(_ context.Context, req *labv1.CreateUserRequest) (*labv1.CreateUserResponse, error) {
	f.record(fmt.Sprintf("CreateUser %s %s", req.GetUserId(), roleName(req.GetUser().GetRole())))
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[req.GetUserId()]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "user %q already exists", req.GetUserId())
	}
	f.users[req.GetUserId()] = req.GetUser().GetRole()
	return &labv1.CreateUserResponse{User: &labv1.User{Name: "users/" + req.GetUserId(), Role: req.GetUser().GetRole()}}, nil
}

func (f *fakeServer) GetUser(_ context.Context, req *labv1.GetUserRequest) (*labv1.GetUserResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.users[shortID(req.GetName())]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "user %q not found", req.GetName())
	}
	return &labv1.GetUserResponse{User: &labv1.User{Name: req.GetName(), Role: r}}, nil
}

func (f *fakeServer) ListUsers(context.Context, *labv1.ListUsersRequest) (*labv1.ListUsersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var resp labv1.ListUsersResponse
	for u, r := range f.users {
		resp.Users = append(resp.Users, &labv1.User{Name: "users/" + u, Role: r, CreateTime: timestamppb.New(t0.Add(-time.Hour))})
	}
	slices.SortFunc(resp.Users, func(a, b *labv1.User) int { return strings.Compare(a.Name, b.Name) })
	return &resp, nil
}

func (f *fakeServer) DeleteUser(_ context.Context, req *labv1.DeleteUserRequest) (*labv1.DeleteUserResponse, error) {
	f.record("DeleteUser " + req.GetName())
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[shortID(req.GetName())]; !ok {
		return nil, status.Errorf(codes.NotFound, "user %q not found", req.GetName())
	}
	delete(f.users, shortID(req.GetName()))
	return &labv1.DeleteUserResponse{}, nil
}

func (f *fakeServer) CreateToken(_ context.Context, req *labv1.CreateTokenRequest) (*labv1.CreateTokenResponse, error) {
	f.record(fmt.Sprintf("CreateToken %s %s ttl=%s %q", req.GetParent(), tokenKindName(req.GetKind()), req.GetTtl().AsDuration(), req.GetDescription()))
	f.mu.Lock()
	defer f.mu.Unlock()
	user := shortID(req.GetParent())
	if _, ok := f.users[user]; !ok {
		return nil, status.Errorf(codes.NotFound, "user %q not found", req.GetParent())
	}
	kind := req.GetKind()
	if kind == labv1.TokenKind_TOKEN_KIND_UNSPECIFIED {
		kind = labv1.TokenKind_TOKEN_KIND_SESSION
	}
	secret := f.newSecretLocked()
	t := fakeToken{name: req.GetParent() + "/tokens/" + tokenID(secret), user: user, kind: kind, desc: req.GetDescription()}
	f.tokens[secret] = t
	resp := &labv1.CreateTokenResponse{Token: &labv1.Token{Name: t.name, Kind: kind, ExpireTime: timestamppb.New(t0.Add(time.Hour))}, Secret: secret}
	if kind == labv1.TokenKind_TOKEN_KIND_INVITE {
		resp.Server, resp.CaHash = f.inviteServer, f.inviteCAHash
	}
	return resp, nil
}

func (f *fakeServer) ListTokens(_ context.Context, req *labv1.ListTokensRequest) (*labv1.ListTokensResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var resp labv1.ListTokensResponse
	for _, t := range f.tokens {
		if req.GetParent() == everyUser || req.GetParent() == "users/"+t.user {
			resp.Tokens = append(resp.Tokens, &labv1.Token{Name: t.name, Kind: t.kind, Description: t.desc,
				CreateTime: timestamppb.New(t0.Add(-2 * time.Hour)), ExpireTime: timestamppb.New(t0.Add(48 * time.Hour))})
		}
	}
	slices.SortFunc(resp.Tokens, func(a, b *labv1.Token) int { return strings.Compare(a.Name, b.Name) })
	return &resp, nil
}

func (f *fakeServer) RevokeToken(_ context.Context, req *labv1.RevokeTokenRequest) (*labv1.RevokeTokenResponse, error) {
	f.record("RevokeToken " + req.GetName())
	f.mu.Lock()
	defer f.mu.Unlock()
	for s, t := range f.tokens {
		if t.name == req.GetName() {
			delete(f.tokens, s)
			return &labv1.RevokeTokenResponse{}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "token %q not found", req.GetName())
}

// testPKI is a throwaway cluster CA and a server certificate from it naming
// 127.0.0.1, ::1 and localhost, as labd's.
type testPKI struct {
	ca     *x509.Certificate
	server tls.Certificate // chain: leaf, then the CA
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "labnet test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "labd"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{ca: ca, server: tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key}}
}

// serverCreds serves TLS with p's certificate.
func (p *testPKI) serverCreds() grpc.ServerOption {
	return grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}))
}
