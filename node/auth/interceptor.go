package auth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// InterceptorConfig is what the interceptors need.
type InterceptorConfig struct {
	// Dir is the users, tokens and lab owners (the local replica).
	Dir Directory
	// Log gets the audit lines; nil discards them.
	Log *slog.Logger
	// Now is the time tokens expire against; nil is time.Now.
	Now func() time.Time
	// Self is this node's name: once Dir holds its identity record, a
	// node certificate without one is refused ("unknown_node"). Empty:
	// never required.
	Self string
}

// Interceptor authenticates and authorizes every call of the API in one
// place (docs/security.md): it finds the call's principal, puts it in the
// call's context (FromContext), asks the policy about everything the call
// names (methods.go), filters what lists and watches return to what the
// caller may see, and logs and counts the calls (audit.go).
type Interceptor struct {
	dir   Directory
	self  string
	log   *slog.Logger
	now   func() time.Time
	calls sync.Map // full method -> *callCounts
	// refused counts node certificates refused by their identity
	// records, by node and reason.
	refused NodeRefusals
}

// NewInterceptor returns the interceptors of cfg.
func NewInterceptor(cfg InterceptorConfig) *Interceptor {
	i := &Interceptor{dir: cfg.Dir, self: cfg.Self, log: cfg.Log, now: cfg.Now}
	if i.log == nil {
		i.log = slog.New(slog.DiscardHandler)
	}
	if i.now == nil {
		i.now = time.Now
	}
	return i
}

// Unary is the interceptor of unary calls; the daemon installs it first.
func (i *Interceptor) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		r, p, err := i.admit(ctx, info.FullMethod)
		if err != nil {
			i.record(ctx, info.FullMethod, p, nil, err)
			return nil, err
		}
		if r.access == public {
			resp, err := handler(ctx, req)
			i.count(info.FullMethod, outcomeOf(err))
			return resp, err
		}
		ctx = NewContext(ctx, p)
		cs, err := i.authorize(p, r, req)
		if err != nil {
			i.record(ctx, info.FullMethod, p, cs, err)
			return nil, err
		}
		resp, err := handler(ctx, req)
		if err == nil {
			resp = i.filterList(p, resp)
		}
		i.record(ctx, info.FullMethod, p, cs, err)
		return resp, err
	}
}

// Stream is the interceptor of streaming calls; the daemon installs it
// first. Every message the client sends is authorized as it is received
// (a socket stream names its host in a message, not at the start), and
// a Watch's events are filtered as they are sent.
func (i *Interceptor) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		r, p, err := i.admit(ctx, info.FullMethod)
		if err != nil {
			i.record(ctx, info.FullMethod, p, nil, err)
			return err
		}
		if r.access == public {
			err := handler(srv, ss)
			i.count(info.FullMethod, outcomeOf(err))
			return err
		}
		s := &stream{ServerStream: ss, ctx: NewContext(ctx, p), i: i, p: p, r: r}
		if info.FullMethod == labSvc+"Watch" && p.Role != Admin {
			s.seen = map[string]bool{}
		}
		err = handler(srv, s)
		cs, denied := s.result()
		if denied != nil {
			err = denied
		}
		i.record(s.ctx, info.FullMethod, p, cs, err)
		return err
	}
}

// admit finds the method's rule and the call's principal, and checks
// that the principal may make calls of this kind at all.
func (i *Interceptor) admit(ctx context.Context, method string) (rule, *Principal, error) {
	r, ok := ruleOf(method)
	if !ok {
		return r, nil, status.Errorf(codes.PermissionDenied, "%s has no authorization rule: no one may call it", method)
	}
	if r.access == public {
		return r, nil, nil
	}
	p, err := authenticate(ctx, i.dir, i.now(), nodeCheck{required: i.required, method: method})
	if err != nil {
		var nr *NodeRefusedError
		if errors.As(err, &nr) && i.refused.Add(nr.Node, nr.Reason) {
			i.log.Warn("node refused", "node", nr.Node, "reason", nr.Reason, "method", method)
		}
		return r, nil, err
	}
	switch r.access {
	case nodeOnly:
		if !p.IsNode() {
			return r, p, status.Errorf(codes.PermissionDenied, "%s may not call %s: only labnet nodes call it", p, method)
		}
	case anySession:
		if p.TokenKind == Invite {
			return r, p, status.Errorf(codes.PermissionDenied, "%s may not call %s with an invite token: run `labctl login` with it first", p, method)
		}
	case inviteOnly:
		if p.TokenKind != Invite {
			return r, p, status.Errorf(codes.PermissionDenied, "%s may not call %s: it takes an invite token (labctl user invite)", p, method)
		}
	}
	return r, p, nil
}

// required reports whether node certificates need identity records:
// this node's own is in the replica (it is enrolled and has caught up),
// so a peer's missing record means not yet replicated, or never made.
func (i *Interceptor) required() bool {
	if i.self == "" {
		return false
	}
	_, ok := i.dir.Node(i.self)
	return ok
}

// authorize asks the policy about everything msg names; it returns what
// it asked, and the first refusal.
func (i *Interceptor) authorize(p *Principal, r rule, msg any) ([]perm, error) {
	if r.access != byPolicy {
		return nil, nil
	}
	cs := r.checks(i.dir, msg)
	for _, c := range cs {
		if err := Authorize(i.dir, p, c.Verb, c.Resource); err != nil {
			return cs, err
		}
	}
	return cs, nil
}

// stream is a streaming call with its principal in its context, whose
// received messages are authorized and whose Watch events are filtered.
type stream struct {
	grpc.ServerStream
	ctx context.Context
	i   *Interceptor
	p   *Principal
	r   rule

	mu     sync.Mutex
	checks []perm // the first message's that named something, for the audit
	denied error  // set once: every later receive and send fails with it

	seen map[string]bool // Watch of a non-admin: the names sent (filter.go)
}

func (s *stream) Context() context.Context { return s.ctx }

func (s *stream) RecvMsg(m any) error {
	if err := s.deniedErr(); err != nil {
		return err
	}
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	cs, err := s.i.authorize(s.p, s.r, m)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checks == nil && len(cs) > 0 {
		s.checks = cs
	}
	if err != nil {
		s.checks = cs
		s.denied = err
	}
	return err
}

func (s *stream) SendMsg(m any) error {
	if err := s.deniedErr(); err != nil {
		return err
	}
	if s.seen != nil {
		if m = s.i.watchVisible(s.p, s.seen, m); m == nil {
			return nil
		}
	}
	return s.ServerStream.SendMsg(m)
}

func (s *stream) deniedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.denied
}

func (s *stream) result() ([]perm, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checks, s.denied
}

// outcome is how a call ended, for the audit and the metrics.
type outcome int

const (
	outcomeOK outcome = iota
	outcomeDenied
	outcomeUnauthenticated
	outcomeError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "denied", "unauthenticated", "error"}

func (o outcome) String() string { return outcomeNames[o] }

func outcomeOf(err error) outcome {
	if err == nil {
		return outcomeOK
	}
	var d *DeniedError
	if errors.As(err, &d) {
		return outcomeDenied
	}
	switch status.Code(err) {
	case codes.PermissionDenied:
		return outcomeDenied
	case codes.Unauthenticated:
		return outcomeUnauthenticated
	}
	return outcomeError
}

// Refused yields the node certificates refused so far, by node and
// reason.
func (i *Interceptor) Refused(yield func(node, reason string, count uint64) bool) {
	i.refused.All(yield)
}
