package api

import (
	"context"

	"google.golang.org/grpc/metadata"

	"github.com/labnet-dev/labnet/node/auth"
)

// Metadata of a call one node passes on to another, besides forwardedKey.
// The receiving node believes them only from a peer node's certificate
// (node/auth's interceptor); the caller's own credentials (the
// authorization header) are never passed on.
const (
	// forwardedUserKey names the user the call is made for
	// (auth.ForwardContext sets it).
	forwardedUserKey = "labnet-forwarded-user"
	// forwardedInviteKey is the id of the invite token the caller
	// presented: Login, forwarded to the leader, uses that invite up.
	forwardedInviteKey = "labnet-forwarded-invite"
)

// forwarded is ctx for a call this node passes on to another: it names
// this node (so the call is never passed on again) and the caller, whom
// the other node then authorizes as if the call came to it directly.
func (s *Server) forwarded(ctx context.Context) context.Context {
	ctx = forwardContext(metadata.AppendToOutgoingContext(ctx, forwardedKey, s.cfg.Node))
	if p := principal(ctx); p != nil && p.TokenKind == auth.Invite && p.TokenID != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, forwardedInviteKey, p.TokenID)
	}
	return ctx
}

// forwardContext adds the caller's user to ctx's outgoing metadata: what
// auth.ForwardContext (node/auth/forward.go) does, which this stands in
// for until that is merged.
func forwardContext(ctx context.Context) context.Context {
	if p := principal(ctx); p != nil && p.User != "" {
		return metadata.AppendToOutgoingContext(ctx, forwardedUserKey, p.User)
	}
	return ctx
}
