package auth

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ForwardContext is ctx for a call this control node passes on to
// another node for the user whose call it serves: the outgoing metadata
// names the user (ForwardedUserKey) and the public id of the token they
// presented (ForwardedTokenKey), which the receiving node trusts only
// because this node's control certificate authenticates the connection.
// The caller's authorization header is never passed on (gRPC does not
// copy incoming metadata to outgoing calls, and nothing here does).
// Without a principal in ctx, or for a node acting for itself, ctx is
// returned as it is; a ctx that already names the user is not extended
// again. A member forwards with ForwardBearer instead.
func ForwardContext(ctx context.Context) context.Context {
	p, ok := FromContext(ctx)
	if !ok || p.User == "" {
		return ctx
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(ForwardedUserKey)) > 0 {
		return ctx
	}
	kv := []string{ForwardedUserKey, p.User}
	if p.TokenID != "" {
		kv = append(kv, ForwardedTokenKey, p.TokenID)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// ForwardBearer is ctx for a call this member node passes on to another
// node for the user whose call it serves: the caller's own bearer token
// (the authorization metadata this node received), which the receiving
// node authenticates as if the caller had called it, with Via naming
// this node. A member's certificate may not name users (memberPrincipal),
// so a call that reached this node without a bearer token (forwarded to
// it by a control node, say) cannot be passed on: FailedPrecondition.
// Without a principal in ctx, or for a node acting for itself, ctx is
// returned as it is.
func ForwardBearer(ctx context.Context) (context.Context, error) {
	p, ok := FromContext(ctx)
	if !ok || p.User == "" {
		return ctx, nil
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(authorizationKey)) > 0 {
		return ctx, nil
	}
	in, _ := metadata.FromIncomingContext(ctx)
	authz := in.Get(authorizationKey)
	if len(authz) != 1 {
		who := "it"
		if p.Via != "" {
			who = "node " + p.Via
		}
		return nil, status.Errorf(codes.FailedPrecondition, "this node is a member: it passes a call on only with the caller's own token, and %s sent the call for %s without one: call a control node or the node that serves it", who, p.User)
	}
	return metadata.AppendToOutgoingContext(ctx, authorizationKey, authz[0]), nil
}
