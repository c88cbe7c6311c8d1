package api

import (
	"context"

	"google.golang.org/grpc/metadata"

	"github.com/labnet-dev/labnet/node/auth"
)

// forwarded is ctx for a call this node passes on to another: it names
// this node (so the call is never passed on again) and the caller, whom
// the other node then authorizes as if the call came to it directly. A
// control node names the caller and the token they presented
// (auth.ForwardContext: the other node believes those names only from a
// control node's certificate), and a Login forwarded to the leader so
// uses up the invite it came with. A member passes on the caller's own
// bearer token (auth.ForwardBearer), and cannot pass on a call that came
// without one.
func (s *Server) forwarded(ctx context.Context) (context.Context, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, forwardedKey, s.cfg.Node)
	if s.cfg.Member != nil && s.cfg.Member() {
		return auth.ForwardBearer(ctx)
	}
	return auth.ForwardContext(ctx), nil
}
