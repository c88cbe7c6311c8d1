package api_test

import (
	"context"
	"encoding/json"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
)

// The tests' stand-in for node/auth's interceptor (which api does not
// depend on): a call says who makes it in testPrincipalKey metadata (a
// JSON auth.Principal), or is a forwarded call naming its user in
// labnet-forwarded-user (and its token in labnet-forwarded-token), which
// it believes as the real interceptor does from a node's certificate. It
// also records every call's metadata.

const testPrincipalKey = "x-test-principal"

// as is ctx for a call made by p.
func as(ctx context.Context, p *auth.Principal) context.Context {
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return metadata.AppendToOutgoingContext(ctx, testPrincipalKey, string(b))
}

// Principals of the tests.
var (
	admin = &auth.Principal{User: "root", Role: auth.Admin, TokenKind: auth.Session}
	alice = &auth.Principal{User: "alice", Role: auth.Student, TokenID: "alicetoken", TokenKind: auth.Session}
	bob   = &auth.Principal{User: "bob", Role: auth.Student, TokenID: "bobstokenx", TokenKind: auth.Session}
)

type call struct {
	method string
	md     metadata.MD
}

// testAuth is one server's stand-in interceptor.
type testAuth struct {
	st    *store.Store
	mu    sync.Mutex
	calls []call
}

func (a *testAuth) options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			return h(a.principal(ctx, info.FullMethod), req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return h(srv, ctxStream{ss, a.principal(ss.Context(), info.FullMethod)})
		}),
	}
}

func (a *testAuth) principal(ctx context.Context, method string) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	a.mu.Lock()
	a.calls = append(a.calls, call{method, md.Copy()})
	a.mu.Unlock()
	if v := md.Get(testPrincipalKey); len(v) > 0 {
		var p auth.Principal
		if err := json.Unmarshal([]byte(v[0]), &p); err != nil {
			panic(err)
		}
		return auth.NewContext(ctx, &p)
	}
	if u := md.Get("labnet-forwarded-user"); len(u) > 0 {
		dir := lab.NewDirectory(a.st)
		role, _ := dir.User(u[0])
		p := &auth.Principal{User: u[0], Role: role, Via: md.Get("labnet-forwarded-by")[0], TokenKind: auth.Session}
		if id := md.Get("labnet-forwarded-token"); len(id) > 0 {
			if t, ok := dir.Token(id[0]); ok && t.User == p.User {
				p.TokenID, p.TokenKind = t.ID, t.Kind
			}
		}
		return auth.NewContext(ctx, p)
	}
	return ctx
}

// callsTo is the metadata of every call of method received so far.
func (a *testAuth) callsTo(method string) []metadata.MD {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []metadata.MD
	for _, c := range a.calls {
		if c.method == method {
			out = append(out, c.md)
		}
	}
	return out
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }
