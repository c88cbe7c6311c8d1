package api_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/labnet-dev/labnet/node/api"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// startedPeer is a peer's CaptureService that starts every capture and then
// sends nothing more until the call ends.
type startedPeer struct {
	labv1.UnimplementedCaptureServiceServer
	targets chan []string
}

func (p *startedPeer) Capture(req *labv1.CaptureRequest, st labv1.CaptureService_CaptureServer) error {
	p.targets <- req.Targets
	if err := st.Send(&labv1.CaptureResponse{Event: &labv1.CaptureResponse_Started{Started: &labv1.CaptureStarted{}}}); err != nil {
		return err
	}
	<-st.Context().Done()
	return nil
}

// nodesOf is a membership with the given states.
type nodesOf map[string]labv1.NodeState

func (m nodesOf) Nodes() []*labv1.Node {
	var out []*labv1.Node
	for n, s := range m {
		out = append(out, &labv1.Node{Name: "nodes/" + n, State: s})
	}
	return out
}

// Watch never signals: the states are fixed.
func (nodesOf) Watch() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

// TestCaptureNetworkAcrossUnreachableNodes: a capture of net/lan2 captures
// the interfaces of this node and of a reachable peer, and reports those
// of a node that cannot be reached and of one membership says is away;
// a capture that names a host on such a node fails as before.
func TestCaptureNetworkAcrossUnreachableNodes(t *testing.T) {
	peer := &startedPeer{targets: make(chan []string, 4)}
	g := grpc.NewServer()
	labv1.RegisterCaptureServiceServer(g, peer)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	e := newEnv(t, true, func(c *api.Config) {
		c.Members = nodesOf{testNode: labv1.NodeState_NODE_STATE_ALIVE, "n2": labv1.NodeState_NODE_STATE_ALIVE,
			"n3": labv1.NodeState_NODE_STATE_ALIVE, "n4": labv1.NodeState_NODE_STATE_DEAD}
		c.Peer = func(node string) (grpc.ClientConnInterface, error) {
			switch node {
			case "n2":
				return grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			case "n3":
				return grpc.NewClient(dead, grpc.WithTransportCredentials(insecure.NewCredentials()))
			}
			return nil, errors.New("no address known")
		}
	})
	topo := demo()
	topo.Hosts[2].Node = "n2"
	for _, h := range []struct{ name, node string }{{"h3", "n3"}, {"h4", "n4"}} {
		topo.Hosts = append(topo.Hosts, &labv1.Host{Name: h.name, Node: h.node, Interfaces: []*labv1.Interface{{Network: "lan2"}}})
	}
	e.apply(t, topo)
	e.waitRunning(t, "labs/demo/hosts/r1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cctx, stop := context.WithCancel(ctx)
	st, err := e.capt.Capture(cctx, &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"net/lan2"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil {
		t.Fatalf("capture of net/lan2: %v", err)
	}
	var captured []string
	for _, ci := range m.GetStarted().GetInterfaces() {
		captured = append(captured, ci.Name)
	}
	if diff := cmp.Diff([]string{"h2:eth0", "r1:eth1"}, captured); diff != "" {
		t.Errorf("captured (-want +got):\n%s", diff)
	}
	un := m.GetStarted().GetUnreachable()
	if len(un) != 2 {
		t.Fatalf("unreachable %v, want h3:eth0 and h4:eth0", un)
	}
	if un[0].Name != "h3:eth0" || un[0].Node != "n3" || !strings.HasPrefix(un[0].Reason, "node n3 unreachable: ") {
		t.Errorf("unreachable[0] = %v, want h3:eth0 on n3, unreachable", un[0])
	}
	if un[1].Name != "h4:eth0" || un[1].Node != "n4" || un[1].Reason != "node n4 is away (dead)" {
		t.Errorf("unreachable[1] = %v, want h4:eth0 on n4, away (dead)", un[1])
	}
	if got := <-peer.targets; !cmp.Equal(got, []string{"h2:eth0"}) {
		t.Errorf("peer n2 asked for %v, want h2:eth0", got)
	}
	// The capture goes on: stats arrive.
	for {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("capture ended: %v", err)
		}
		if m.GetStats() != nil {
			break
		}
	}
	stop()

	// Naming a host on such a node still fails.
	for _, target := range []string{"h3", "h4:eth0"} {
		st, err := e.capt.Capture(ctx, &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{target, "net/lan2"}})
		if err == nil {
			_, err = st.Recv()
		}
		wantCode(t, err, codes.Unavailable)
	}
}

// TestCaptureNetworkNothingReachable: a network capture that can reach
// none of its interfaces fails, naming them.
func TestCaptureNetworkNothingReachable(t *testing.T) {
	e := newEnv(t, false, func(c *api.Config) {
		c.Members = nodesOf{testNode: labv1.NodeState_NODE_STATE_ALIVE, "n4": labv1.NodeState_NODE_STATE_LEFT}
		c.Peer = func(string) (grpc.ClientConnInterface, error) { return nil, errors.New("no address known") }
	})
	e.apply(t, &labv1.Topology{Lab: "demo", Networks: []*labv1.Network{{Name: "lan", Ipv4: "10.0.1.0/24"}},
		Hosts: []*labv1.Host{{Name: "h4", Node: "n4", Interfaces: []*labv1.Interface{{Network: "lan"}}}}})
	st, err := e.capt.Capture(context.Background(), &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"net/lan"}})
	if err == nil {
		_, err = st.Recv()
	}
	wantCode(t, err, codes.Unavailable)
	if err == nil || !strings.Contains(err.Error(), "h4:eth0 (node n4 is away (left the cluster))") {
		t.Errorf("error %v, want it to name h4:eth0 and why", err)
	}
}
