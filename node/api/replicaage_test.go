package api_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/labnet-dev/labnet/node/api"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func TestReplicaAgeHeader(t *testing.T) {
	member := func(c *api.Config) {
		c.Staleness = func() (time.Duration, bool) { return 12500 * time.Millisecond, true }
	}
	control := func(c *api.Config) {
		c.Staleness = func() (time.Duration, bool) { return time.Hour, false }
	}
	ctx := context.Background()
	tests := []struct {
		name string
		opt  func(*api.Config)
		call func(e *env) (metadata.MD, error)
		want []string
	}{
		{"member list", member, func(e *env) (metadata.MD, error) {
			var md metadata.MD
			_, err := e.lab.ListLabs(ctx, &labv1.ListLabsRequest{}, grpc.Header(&md))
			return md, err
		}, []string{"12.5"}},
		{"member node list", member, func(e *env) (metadata.MD, error) {
			var md metadata.MD
			_, err := e.nodes.ListNodes(ctx, &labv1.ListNodesRequest{}, grpc.Header(&md))
			return md, err
		}, []string{"12.5"}},
		{"member watch", member, func(e *env) (metadata.MD, error) {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			w, err := e.lab.Watch(wctx, &labv1.WatchRequest{})
			if err != nil {
				return nil, err
			}
			return w.Header()
		}, []string{"12.5"}},
		{"member write", member, func(e *env) (metadata.MD, error) {
			var md metadata.MD
			_, err := e.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "demo", Lab: &labv1.Lab{}}, grpc.Header(&md))
			return md, err
		}, nil},
		{"control node", control, func(e *env) (metadata.MD, error) {
			var md metadata.MD
			_, err := e.lab.ListLabs(ctx, &labv1.ListLabsRequest{}, grpc.Header(&md))
			return md, err
		}, nil},
		{"single node", func(*api.Config) {}, func(e *env) (metadata.MD, error) {
			var md metadata.MD
			_, err := e.lab.ListLabs(ctx, &labv1.ListLabsRequest{}, grpc.Header(&md))
			return md, err
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, false, tc.opt)
			md, err := tc.call(e)
			if err != nil {
				t.Fatal(err)
			}
			if got := md.Get(api.ReplicaAgeHeader); len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Errorf("%s = %q, want %q", api.ReplicaAgeHeader, got, tc.want)
			}
		})
	}
}
