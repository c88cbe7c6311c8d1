package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/labnet-dev/labnet/node/store"
)

// Writer commits writes to the desired state: fn reads and edits a
// transaction; Update returns once the write is committed, with the
// state's revision after it. On a control node it is the control plane
// (node/control), which commits through raft; a Writer that cannot commit
// here (not the leader, or a member) returns an error with a
// NotLeader() string method naming the leader ("" when none is known),
// and the API forwards the whole call to that node.
type Writer interface {
	Update(ctx context.Context, fn func(*store.Tx) error) (uint64, error)
}

// notLeaderer is what a Writer's error implements when this node cannot
// commit writes (node/control's NotLeaderError): api recognises it
// without importing the control plane.
type notLeaderer interface{ NotLeader() string }

// controlNamer is what a NotLeader error may also implement: the control
// nodes this node knows of, for a refusal that names them.
type controlNamer interface{ ControlNodes() []string }

// outcomeUnknowner is what a Writer's error implements when the leader lost
// its leadership after proposing the write (node/control's
// ErrOutcomeUnknown): it may or may not have been committed.
type outcomeUnknowner interface{ OutcomeUnknown() bool }

// localWriter commits to the store directly: a labd without a control
// plane (tests, tools).
type localWriter struct{ st *store.Store }

func (w localWriter) Update(_ context.Context, fn func(*store.Tx) error) (uint64, error) {
	return w.st.Update(fn)
}

// errNotLeader is a write refused here because another node leads; the
// ForwardWrites interceptor passes the whole call on to it. Should it
// escape (no interceptor), it reads as Unavailable.
type errNotLeader struct {
	leader   string
	controls []string // the control nodes known here, for the message
	md       []string // metadata (key, value, ...) the forwarded call carries
}

// NotLeader is the error with which a unary handler outside this
// package (node's ControlService: Enroll, RecordIdentity) says that its
// write was refused because another node leads (control.NotLeaderError):
// the API's forwardWrites interceptor passes the whole call, as it came,
// to leader (or, failing that, to the other controls). md are metadata
// pairs (key, value, ...) the forwarded call carries besides the usual
// (what the handler learnt from its own caller that the leader cannot:
// the caller's certificate, say); the leader may believe them only from
// a control node's certificate.
func NotLeader(leader string, controls []string, md ...string) error {
	return &errNotLeader{leader: leader, controls: controls, md: md}
}

func (e *errNotLeader) Error() string { return e.GRPCStatus().Message() }

func (e *errNotLeader) GRPCStatus() *status.Status {
	if e.leader == "" {
		return status.New(codes.Unavailable, "no leader of the control plane is known"+e.needed()+": try again in a few seconds")
	}
	return status.Newf(codes.Unavailable, "this node does not lead the control plane; node %s does", e.leader)
}

// needed names the control nodes a majority of which must be up, when
// they are known: " (control nodes a, b, c: a majority of them must be up)".
func (e *errNotLeader) needed() string {
	if len(e.controls) == 0 {
		return ""
	}
	return fmt.Sprintf(" (control nodes %s: a majority of them must be up)", strings.Join(e.controls, ", "))
}

// update runs fn in a write through the Writer and maps errors to gRPC
// status.
func (s *Server) update(ctx context.Context, fn func(tx *store.Tx) error) error {
	_, err := s.cfg.Writer.Update(ctx, fn)
	if err == nil || errors.Is(err, errAbort) {
		return nil
	}
	var nl notLeaderer
	if errors.As(err, &nl) {
		e := &errNotLeader{leader: nl.NotLeader()}
		if cn, ok := nl.(controlNamer); ok {
			e.controls = cn.ControlNodes()
		}
		return e
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ou outcomeUnknowner
	if errors.As(err, &ou) && ou.OutcomeUnknown() {
		return status.Error(codes.Unavailable, "the control plane's leader lost its majority while committing this write: it may or may not have been applied; check before trying again")
	}
	if errors.Is(err, store.ErrConflict) {
		return status.Error(codes.Aborted, "changed by another write since it was read: try again")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	s.cfg.Logger.Error("store write failed", "err", err)
	return status.Errorf(codes.Internal, "store: %v", err)
}

// forwardWrites runs a unary call here and, when its write was refused
// because another node leads, passes the whole call to the leader's API
// (one hop, as live calls are forwarded: forward.go). A write is refused
// before anything is applied, so the call is replayed there as it came.
// When the leader named here cannot even be dialled (gossip still names a
// leader that was killed), the call is offered to the other control nodes
// in turn, until one takes it or says something other than a refusal;
// the error then names every control node tried.
//
// When no control node could be reached at all (the call never left), the
// call is tried again, here, for up to leaderRetry: for a second or so
// after an election, gossip still names the leader that was killed (or
// its old address, after a restart), and the next try asks again which
// node leads.
func (s *Server) forwardWrites(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	deadline := time.Now().Add(leaderRetry)
	for {
		resp, unreached, err := s.writeOnce(ctx, req, info, handler)
		if !unreached || time.Now().After(deadline) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leaderRetry bounds how long a write whose leader cannot be reached is
// tried again.
const leaderRetry = 5 * time.Second

// writeOnce is one try of forwardWrites; unreached tells that the leader
// it forwarded to could not be reached (the call was not sent).
func (s *Server) writeOnce(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, unreached bool, err error) {
	resp, err = handler(ctx, req)
	var nl *errNotLeader
	if !errors.As(err, &nl) {
		return resp, false, err
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forwardedKey)) > 0 && nl.leader != "" {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(refusedKey, "not-leader"))
		return nil, false, status.Errorf(codes.Unavailable, "this node does not lead the control plane (node %s does) and the call was already forwarded by %s: try again", nl.leader, md.Get(forwardedKey)[0])
	}
	if nl.leader == "" || nl.leader == s.cfg.Node || s.cfg.Peer == nil {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(refusedKey, "not-leader"))
		return nil, false, nl.GRPCStatus().Err()
	}
	fctx, err := s.forwarded(ctx)
	if err != nil {
		return nil, false, err
	}
	if len(nl.md) > 0 && len(nl.md)%2 == 0 {
		fctx = metadata.AppendToOutgoingContext(fctx, nl.md...)
	}
	reply, refused, err := s.forwardWrite(fctx, nl.leader, info.FullMethod, req)
	if !refused {
		return reply, false, err
	}
	tried := []string{triedOn(nl.leader, err)}
	for _, node := range nl.controls {
		if node == nl.leader || node == s.cfg.Node {
			continue
		}
		reply, refused, err = s.forwardWrite(fctx, node, info.FullMethod, req)
		if !refused {
			return reply, false, err
		}
		tried = append(tried, triedOn(node, err))
	}
	if len(tried) == 1 {
		return nil, true, err
	}
	_ = grpc.SetTrailer(ctx, metadata.Pairs(refusedKey, "not-leader"))
	return nil, true, status.Errorf(codes.Unavailable, "no control node took the write%s: %s", (&errNotLeader{controls: nl.controls}).needed(), strings.Join(tried, "; "))
}

// triedOn is what node answered a forwarded write, for a message that
// lists several: "c1: cannot be reached from here: ...".
func triedOn(node string, err error) string {
	return node + ": " + strings.TrimPrefix(status.Convert(err).Message(), "node "+node+" ")
}

// refusedKey is the trailer with which a write refused before anything was
// applied (this node does not lead) says so, so that the node that
// forwarded it may offer it to another control node.
const refusedKey = "labnet-write-refused"

// forwardWrite passes the call to node's API. refused reports that node
// applied nothing for sure: it could not be dialled, or it refused the
// write as not the leader.
func (s *Server) forwardWrite(ctx context.Context, node, method string, req any) (reply any, refused bool, err error) {
	reply, err = newReply(method)
	if err != nil {
		return nil, false, status.Errorf(codes.Internal, "forward %s to the leader: %v", method, err)
	}
	conn, err := s.cfg.Peer(node)
	if err != nil {
		return nil, true, status.Errorf(codes.Unavailable, "node %s cannot be reached: %v", node, err)
	}
	var trailer metadata.MD
	err = conn.Invoke(ctx, method, req, reply, grpc.Trailer(&trailer))
	if err == nil {
		return reply, false, nil
	}
	st := status.Convert(err)
	dialFailed := st.Code() == codes.Unavailable && strings.Contains(st.Message(), "while dialing")
	refused = dialFailed || (st.Code() == codes.Unavailable && len(trailer.Get(refusedKey)) > 0)
	return nil, refused, peerConn{conn, node}.wrap(err)
}

// newReply is an empty response message of the unary method full
// ("/lab.v1.LabService/Apply"), from the registered descriptors.
func newReply(full string) (any, error) {
	svc, method, ok := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	if !ok {
		return nil, fmt.Errorf("method %q", full)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, err
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return nil, fmt.Errorf("%s has no method %s", svc, method)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil, err
	}
	return mt.New().Interface(), nil
}
