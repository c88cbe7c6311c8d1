package api_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/runtime"
	"github.com/labnet-dev/labnet/node/store"
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
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Origin: testNode})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt := runtime.New(runtime.Config{Node: testNode, Store: st, Fabric: fabric.New()})
	srv := api.New(api.Config{Node: testNode, Store: st, Hosts: runtimeHosts{rt}, Members: oneNode{},
		Peer: func(string) (grpc.ClientConnInterface, error) {
			return grpc.NewClient(dead, grpc.WithTransportCredentials(insecure.NewCredentials()))
		}})
	g := grpc.NewServer()
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	topo := demo()
	for _, h := range topo.Hosts {
		h.Node = "n2"
	}
	if _, err := labv1.NewLabServiceClient(conn).Apply(ctx, &labv1.ApplyRequest{Topology: topo}); err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error) {
		t.Helper()
		s := status.Convert(err)
		if s.Code() != codes.Unavailable || !strings.HasPrefix(s.Message(), "node n2 cannot be reached from here: ") || strings.Contains(s.Message(), "connection error") {
			t.Errorf("%s: %v; want Unavailable naming node n2", what, err)
		}
	}
	_, err = labv1.NewLiveServiceClient(conn).GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h1"})
	check("status", err)
	ps, err := labv1.NewLiveServiceClient(conn).Ping(ctx, &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "10.0.2.1", Count: 1})
	if err == nil {
		_, err = ps.Recv()
	}
	check("ping", err)
	cs, err := labv1.NewCaptureServiceClient(conn).Capture(ctx, &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1"}})
	if err == nil {
		_, err = cs.Recv()
	}
	check("capture", err)
}
