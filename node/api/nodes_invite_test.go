package api_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestNodeInviteInputErrors: CreateNodeInvite and RemoveNode refuse bad
// input with a clear status before writing anything.
func TestNodeInviteInputErrors(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  *labv1.CreateNodeInviteRequest
		want codes.Code
	}{
		{"no name", &labv1.CreateNodeInviteRequest{}, codes.InvalidArgument},
		{"slash", &labv1.CreateNodeInviteRequest{NodeId: "a/b"}, codes.InvalidArgument},
		{"space", &labv1.CreateNodeInviteRequest{NodeId: "a b"}, codes.InvalidArgument},
		{"bad owner", &labv1.CreateNodeInviteRequest{NodeId: "n", Owner: "Not A User"}, codes.InvalidArgument},
		{"unknown owner", &labv1.CreateNodeInviteRequest{NodeId: "n", Owner: "nobody"}, codes.NotFound},
		{"negative ttl", &labv1.CreateNodeInviteRequest{NodeId: "n", Ttl: durationpb.New(-time.Hour)}, codes.InvalidArgument},
		{"ttl over 7 days", &labv1.CreateNodeInviteRequest{NodeId: "n", Ttl: durationpb.New(8 * 24 * time.Hour)}, codes.InvalidArgument},
	} {
		if _, err := e.nodes.CreateNodeInvite(ctx, tc.req); status.Code(err) != tc.want {
			t.Errorf("CreateNodeInvite %s: %v; want %v", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		want codes.Code
	}{
		{"", codes.InvalidArgument},
		{"nodes/a b", codes.InvalidArgument},
		{"nodes/nowhere", codes.NotFound},
	} {
		if _, err := e.nodes.RemoveNode(ctx, &labv1.RemoveNodeRequest{Name: tc.name}); status.Code(err) != tc.want {
			t.Errorf("RemoveNode %q: %v; want %v", tc.name, err, tc.want)
		}
	}
}
