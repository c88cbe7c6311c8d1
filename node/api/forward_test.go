package api_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/api"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestForwardToUnreachableNode: when the node that runs a host cannot be
// reached, the error names that node, not the labd the client called
// (whose transport error it would otherwise look like).
func TestForwardToUnreachableNode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	e := newEnv(t, false, func(c *api.Config) {
		c.Peer = func(string) (grpc.ClientConnInterface, error) {
			return grpc.NewClient(dead, grpc.WithTransportCredentials(insecure.NewCredentials()))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	topo := demo()
	for _, h := range topo.Hosts {
		h.Node = "n2"
	}
	e.apply(t, topo)
	check := func(what string, err error) {
		t.Helper()
		s := status.Convert(err)
		if s.Code() != codes.Unavailable || !strings.HasPrefix(s.Message(), "node n2 cannot be reached from here: ") || strings.Contains(s.Message(), "connection error") {
			t.Errorf("%s: %v; want Unavailable naming node n2", what, err)
		}
	}
	_, err = e.live.GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h1"})
	check("status", err)
	ps, err := e.live.Ping(ctx, &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "10.0.2.1", Count: 1})
	if err == nil {
		_, err = ps.Recv()
	}
	check("ping", err)
	cs, err := e.capt.Capture(ctx, &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1"}})
	if err == nil {
		_, err = cs.Recv()
	}
	check("capture", err)
}
