package api

import (
	"context"

	"google.golang.org/grpc/metadata"
)

// forwarded is ctx for a call this node passes on to another: it names
// this node (so the call is never passed on again) and the caller, whom
// the other node then authorizes as if the call came to it directly (it
// believes the names only from a node's certificate: node/auth). The
// caller's own credentials, the authorization header, are never passed
// on: gRPC does not copy incoming metadata to outgoing calls.
func (s *Server) forwarded(ctx context.Context) context.Context {
	return forwardContext(metadata.AppendToOutgoingContext(ctx, forwardedKey, s.cfg.Node))
}

// The metadata auth.ForwardContext names the caller with.
const (
	forwardedUserKey  = "labnet-forwarded-user"
	forwardedTokenKey = "labnet-forwarded-token"
)

// forwardContext stands in for auth.ForwardContext (node/auth/forward.go,
// helper authz's) until that is merged, and does the same: the outgoing
// metadata names the caller's user and the public id of the token they
// presented (so that a Login forwarded to the leader uses up the invite
// it came with). Without a principal, or for a node acting for itself,
// ctx is returned as it is.
func forwardContext(ctx context.Context) context.Context {
	p := principal(ctx)
	if p == nil || p.User == "" {
		return ctx
	}
	kv := []string{forwardedUserKey, p.User}
	if p.TokenID != "" {
		kv = append(kv, forwardedTokenKey, p.TokenID)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}
