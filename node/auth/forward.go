package auth

import (
	"context"

	"google.golang.org/grpc/metadata"
)

// ForwardContext is ctx for a call this node passes on to another node
// for the user whose call it serves: the outgoing metadata names the
// user (ForwardedUserKey) and the public id of the token they presented
// (ForwardedTokenKey), which the receiving node trusts only because this
// node's certificate authenticates the connection. The caller's
// authorization header is never passed on (gRPC does not copy incoming
// metadata to outgoing calls, and nothing here does). Without a
// principal in ctx, or for a node acting for itself, ctx is returned as
// it is; a ctx that already names the user is not extended again.
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
