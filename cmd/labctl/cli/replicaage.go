package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// replicaAgeHeader is labd's response header on a member's reads: how many
// seconds ago (decimal) its replica last heard from the control plane
// (node/api.ReplicaAgeHeader).
const replicaAgeHeader = "labnet-replica-age"

// staleAfter is the replica age from which labctl says the answer may be
// old: the control plane sends a heartbeat every second.
const staleAfter = 2 * time.Second

// replicaAgeInterceptors read the replica age of every call's response
// header and print the note (once per run).
func (a *app) replicaAgeInterceptors() []grpc.DialOption {
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var md metadata.MD
		err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Header(&md))...)
		a.noteReplicaAge(md)
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &ageStream{ClientStream: cs, a: a}, nil
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)}
}

// ageStream looks at the header once the first message (or the end) has
// come, when reading it no longer blocks.
type ageStream struct {
	grpc.ClientStream
	a    *app
	seen bool
}

func (s *ageStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if !s.seen {
		s.seen = true
		if md, herr := s.ClientStream.Header(); herr == nil {
			s.a.noteReplicaAge(md)
		}
	}
	return err
}

// noteReplicaAge prints, once, that the answer came from a replica more
// than staleAfter old.
func (a *app) noteReplicaAge(md metadata.MD) {
	v := md.Get(replicaAgeHeader)
	if len(v) == 0 || a.notedAge.Load() {
		return
	}
	secs, err := strconv.ParseFloat(v[0], 64)
	if err != nil || secs < 0 || secs > 1e9 {
		return // not a number labd would send: no note rather than a wrong one
	}
	age := time.Duration(secs * float64(time.Second))
	if age <= staleAfter {
		return
	}
	if !a.notedAge.CompareAndSwap(false, true) {
		return
	}
	since := a.now().Add(-age).Local().Format("15:04:05")
	fmt.Fprintf(a.stderr, "note: this node's copy of the lab is %ds old (control plane unreachable since %s)\n", int64(age/time.Second), since)
}
