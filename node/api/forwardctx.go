package api

import (
	"context"

	"google.golang.org/grpc/metadata"

	"github.com/labnet-dev/labnet/node/auth"
)

// forwarded is ctx for a call this node passes on to another: it names
// this node (so the call is never passed on again) and, by
// auth.ForwardContext, the caller and the token they presented, whom the
// other node then authorizes as if the call came to it directly (it
// believes those names only from a node's certificate). A Login
// forwarded to the leader so uses up the invite it came with. The
// caller's own credentials, the authorization header, are never passed
// on: gRPC does not copy incoming metadata to outgoing calls.
func (s *Server) forwarded(ctx context.Context) context.Context {
	return auth.ForwardContext(metadata.AppendToOutgoingContext(ctx, forwardedKey, s.cfg.Node))
}
