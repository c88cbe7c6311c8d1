package cli

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// t0 is "now" in every test: the fake clock starts there.
var t0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

// fakeServer implements the three services with canned data. Lists hand out
// at most pageSize items per page, so labctl must follow next_page_token.
type fakeServer struct {
	labv1.UnimplementedLabServiceServer
	labv1.UnimplementedNodeServiceServer
	labv1.UnimplementedLiveServiceServer
	labv1.UnimplementedAuthServiceServer

	labs     []*labv1.Lab
	networks []*labv1.Network
	hosts    []*labv1.Host
	nodes    []*labv1.Node
	statuses map[string]*labv1.HostStatus

	mu      sync.Mutex
	calls   []string // "Method name" of every write, and of live calls
	applied []*labv1.ApplyRequest
	// startsAfter makes GetHostStatus report a host as on an unreachable
	// node for its first n calls, then running (apply --wait).
	startsAfter  map[string]int
	statusCalled map[string]int

	// AuthService (fake_auth_test.go).
	users       map[string]labv1.Role
	tokens      map[string]fakeToken // by secret
	nextToken   int
	seen        []string // "Method token" of every call
	requireAuth bool
	// inviteServer and inviteCAHash are what CreateToken returns for an
	// invite.
	inviteServer, inviteCAHash string
}

const pageSize = 2

func newFakeServer() *fakeServer {
	return &fakeServer{
		users:  map[string]labv1.Role{},
		tokens: map[string]fakeToken{},
		labs: []*labv1.Lab{
			{Name: "labs/demo", Description: "Two LANs and a router", Owner: "alice", Shared: true, CreateTime: timestamppb.New(t0.Add(-5*time.Minute - 7*time.Second)), NetworkCount: 2, HostCount: 3},
			{Name: "labs/other", Owner: "bob", CreateTime: timestamppb.New(t0.Add(-50 * time.Hour)), NetworkCount: 1, HostCount: 1},
			{Name: "labs/empty", CreateTime: timestamppb.New(t0.Add(-90 * time.Second))},
		},
		networks: []*labv1.Network{
			{Name: "labs/demo/networks/lan1", Ipv4: "10.0.1.0/24", Ipv6: "fd00:0:0:1::/64", Vni: 101},
			{Name: "labs/demo/networks/lan2", Ipv4: "10.0.2.0/24", Mtu: 9000, Vni: 102},
			{Name: "labs/other/networks/lan1", Ipv4: "192.168.0.0/24", Vni: 201},
		},
		hosts: []*labv1.Host{
			{Name: "labs/demo/hosts/h1", Node: "n1",
				Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan1", Ipv4: "10.0.1.10/24", Ipv6: "fd00:0:0:1::a/64"}},
				Routes:     []*labv1.Route{{To: "default", Via: "10.0.1.1"}}},
			{Name: "labs/demo/hosts/r1", Forwarding: true, Node: "n1", HomeNode: "n1", Pinned: true,
				Interfaces: []*labv1.Interface{{Network: "lan1", Ipv4: "10.0.1.1/24", Ipv6: "fd00:0:0:1::1/64"}, {Network: "lan2", Ipv4: "10.0.2.1/24",
					Impair: &labv1.Impairment{LossPercent: 10, Delay: durationpb.New(20 * time.Millisecond), Jitter: durationpb.New(5 * time.Millisecond), RateBps: 10_000_000}}}},
			{Name: "labs/demo/hosts/h2", Node: "n2", HomeNode: "n3",
				Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan2", Ipv4: "10.0.2.10/24", Impair: &labv1.Impairment{CorruptPercent: 0.5}}},
				Routes:     []*labv1.Route{{To: "default", Via: "10.0.2.1"}}},
			{Name: "labs/other/hosts/h1",
				Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan1"}}},
		},
		nodes: []*labv1.Node{
			{Name: "nodes/n1", State: labv1.NodeState_NODE_STATE_ALIVE, ApiAddress: "127.0.0.1:7700", GossipAddress: "127.0.0.1:7946", OverlayAddress: "127.0.0.1:6081", Version: "v0.1.0", HostCount: 2, StartTime: timestamppb.New(t0.Add(-26 * time.Hour)), Role: labv1.NodeRole_NODE_ROLE_CONTROL, Leader: true},
			{Name: "nodes/n2", State: labv1.NodeState_NODE_STATE_SUSPECT, ApiAddress: "127.0.0.2:7700", GossipAddress: "127.0.0.2:7946", OverlayAddress: "127.0.0.2:6081", Version: "v0.1.0", HostCount: 1, StartTime: timestamppb.New(t0.Add(-3*time.Minute - 30*time.Second)), Role: labv1.NodeRole_NODE_ROLE_MEMBER,
				Kind: "member", Owner: "alice", CertificateExpireTime: timestamppb.New(time.Date(2027, 12, 4, 0, 0, 0, 0, time.UTC))},
			{Name: "nodes/n3", State: labv1.NodeState_NODE_STATE_LEFT},
		},
		statuses: map[string]*labv1.HostStatus{
			"labs/demo/hosts/h1": {
				Name: "labs/demo/hosts/h1", Node: "n1", Running: true,
				Interfaces: []*labv1.InterfaceStatus{{
					Name: "eth0", Network: "lan1", Addresses: []string{"10.0.1.10/24", "fd00:0:0:1::a/64"}, Mtu: 1500,
					Counters: &labv1.InterfaceCounters{RxPackets: 12, RxBytes: 1008, TxPackets: 14, TxBytes: 1176, TxDropped: 1},
				}},
				Routes: []*labv1.RouteStatus{
					{Destination: "10.0.1.0/24", Interface: "eth0", Kind: "connected"},
					{Destination: "fd00:0:0:1::/64", Interface: "eth0", Kind: "connected"},
					{Destination: "0.0.0.0/0", Via: "10.0.1.1", Interface: "eth0", Kind: "static"},
				},
				Ip: &labv1.IPStats{Delivered: 12, IcmpSent: 2, NoRoute: 1},
			},
			"labs/demo/hosts/r1": {
				Name: "labs/demo/hosts/r1", Node: "n1", Running: true,
				Interfaces: []*labv1.InterfaceStatus{
					{Name: "eth0", Network: "lan1", Addresses: []string{"10.0.1.1/24", "fd00:0:0:1::1/64"}, Mtu: 1500},
					{Name: "eth1", Network: "lan2", Addresses: []string{"10.0.2.1/24"}, Mtu: 9000,
						Counters: &labv1.InterfaceCounters{RxPackets: 3, RxBytes: 252, TxPackets: 3, TxBytes: 252,
							ImpairDropped: 2, ImpairDelayed: 9, QueueDropped: 1}},
				},
				Routes: []*labv1.RouteStatus{
					{Destination: "10.0.1.0/24", Interface: "eth0", Kind: "connected"},
					{Destination: "10.0.2.0/24", Interface: "eth1", Kind: "connected"},
				},
				Ip: &labv1.IPStats{},
			},
		},
	}
}

// start serves f on a fresh 127.0.0.1 port until the test ends, with opts.
func (f *fakeServer) start(t *testing.T, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(append(f.authInterceptors(), opts...)...)
	labv1.RegisterLabServiceServer(s, f)
	labv1.RegisterNodeServiceServer(s, f)
	labv1.RegisterLiveServiceServer(s, f)
	labv1.RegisterAuthServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func (f *fakeServer) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeServer) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// page cuts items into pages of pageSize; tokens are offsets.
func page[T any](items []T, token string) ([]T, string, error) {
	off := 0
	if token != "" {
		var err error
		off, err = strconv.Atoi(token)
		if err != nil || off < 0 || off > len(items) {
			return nil, "", status.Errorf(codes.InvalidArgument, "page_token: bad token %q", token)
		}
	}
	end := min(off+pageSize, len(items))
	next := ""
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	return items[off:end], next, nil
}

// under filters resources by parent ("labs/-" is every lab).
func under[T interface{ GetName() string }](f *fakeServer, items []T, parent string) ([]T, error) {
	if parent != allLabs && !slices.ContainsFunc(f.labs, func(l *labv1.Lab) bool { return l.GetName() == parent }) {
		return nil, status.Errorf(codes.NotFound, "lab %q not found", parent)
	}
	var out []T
	for _, it := range items {
		if parent == allLabs || strings.HasPrefix(it.GetName(), parent+"/") {
			out = append(out, it)
		}
	}
	return out, nil
}

func find[T interface{ GetName() string }](items []T, name, what string) (T, error) {
	for _, it := range items {
		if it.GetName() == name {
			return it, nil
		}
	}
	var zero T
	return zero, status.Errorf(codes.NotFound, "%s %q not found", what, name)
}

func (f *fakeServer) GetLab(_ context.Context, req *labv1.GetLabRequest) (*labv1.GetLabResponse, error) {
	l, err := find(f.labs, req.GetName(), "lab")
	return &labv1.GetLabResponse{Lab: l}, err
}

func (f *fakeServer) ListLabs(_ context.Context, req *labv1.ListLabsRequest) (*labv1.ListLabsResponse, error) {
	items, next, err := page(f.labs, req.GetPageToken())
	return &labv1.ListLabsResponse{Labs: items, NextPageToken: next}, err
}

func (f *fakeServer) GetNetwork(_ context.Context, req *labv1.GetNetworkRequest) (*labv1.GetNetworkResponse, error) {
	n, err := find(f.networks, req.GetName(), "network")
	return &labv1.GetNetworkResponse{Network: n}, err
}

func (f *fakeServer) ListNetworks(_ context.Context, req *labv1.ListNetworksRequest) (*labv1.ListNetworksResponse, error) {
	all, err := under(f, f.networks, req.GetParent())
	if err != nil {
		return nil, err
	}
	items, next, err := page(all, req.GetPageToken())
	return &labv1.ListNetworksResponse{Networks: items, NextPageToken: next}, err
}

func (f *fakeServer) GetHost(_ context.Context, req *labv1.GetHostRequest) (*labv1.GetHostResponse, error) {
	h, err := find(f.hosts, req.GetName(), "host")
	return &labv1.GetHostResponse{Host: h}, err
}

func (f *fakeServer) ListHosts(_ context.Context, req *labv1.ListHostsRequest) (*labv1.ListHostsResponse, error) {
	all, err := under(f, f.hosts, req.GetParent())
	if err != nil {
		return nil, err
	}
	items, next, err := page(all, req.GetPageToken())
	return &labv1.ListHostsResponse{Hosts: items, NextPageToken: next}, err
}

func (f *fakeServer) GetNode(ctx context.Context, req *labv1.GetNodeRequest) (*labv1.GetNodeResponse, error) {
	if req.GetName() == "nodes/slow" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	n, err := find(f.nodes, req.GetName(), "node")
	return &labv1.GetNodeResponse{Node: n}, err
}

func (f *fakeServer) ListNodes(_ context.Context, req *labv1.ListNodesRequest) (*labv1.ListNodesResponse, error) {
	items, next, err := page(f.nodes, req.GetPageToken())
	return &labv1.ListNodesResponse{Nodes: items, NextPageToken: next}, err
}

// exists reports whether the fake has a resource of that name.
func (f *fakeServer) exists(name string) bool {
	has := func(n string) bool { return n == name }
	for _, l := range f.labs {
		if has(l.GetName()) {
			return true
		}
	}
	for _, n := range f.networks {
		if has(n.GetName()) {
			return true
		}
	}
	for _, h := range f.hosts {
		if has(h.GetName()) {
			return true
		}
	}
	return false
}

// topologyNames lists the resource names a topology names: lab, networks,
// hosts.
func topologyNames(t *labv1.Topology) (lab string, nets, hosts []string) {
	id := t.GetLab()
	if id == "" {
		id = "default"
	}
	lab = labName(id)
	full := func(coll, n string) string {
		if strings.HasPrefix(n, "labs/") {
			return n
		}
		return lab + "/" + coll + "/" + n
	}
	for _, n := range t.GetNetworks() {
		nets = append(nets, full(collNetworks, n.GetName()))
	}
	for _, h := range t.GetHosts() {
		hosts = append(hosts, full(collHosts, h.GetName()))
	}
	return lab, nets, hosts
}

// Apply reports an existing lab or network as unchanged, an existing host
// as configured, the rest as created. Lab "bad" fails validation.
func (f *fakeServer) Apply(_ context.Context, req *labv1.ApplyRequest) (*labv1.ApplyResponse, error) {
	f.mu.Lock()
	f.applied = append(f.applied, proto.CloneOf(req))
	f.mu.Unlock()
	if req.GetTopology().GetLab() == "bad" {
		st, err := status.New(codes.InvalidArgument, "hosts[1].interfaces[0].ipv4: 10.0.9.1 is not in network lan1 (10.0.1.0/24)").
			WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
				Field: "hosts[1].interfaces[0].ipv4", Description: "10.0.9.1 is not in network lan1 (10.0.1.0/24)",
			}}})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	lab, nets, hosts := topologyNames(req.GetTopology())
	var changes []*labv1.Change
	add := func(name string, ifExists labv1.ChangeAction) {
		act := labv1.ChangeAction_CHANGE_ACTION_CREATED
		if f.exists(name) {
			act = ifExists
		}
		changes = append(changes, &labv1.Change{Name: name, Action: act})
	}
	add(lab, labv1.ChangeAction_CHANGE_ACTION_UNCHANGED)
	for _, n := range nets {
		add(n, labv1.ChangeAction_CHANGE_ACTION_UNCHANGED)
	}
	for _, h := range hosts {
		add(h, labv1.ChangeAction_CHANGE_ACTION_CONFIGURED)
	}
	return &labv1.ApplyResponse{Changes: changes}, nil
}

// DeleteTopology deletes hosts, then networks, of those that exist.
func (f *fakeServer) DeleteTopology(_ context.Context, req *labv1.DeleteTopologyRequest) (*labv1.DeleteTopologyResponse, error) {
	_, nets, hosts := topologyNames(req.GetTopology())
	var changes []*labv1.Change
	for _, n := range append(hosts, nets...) {
		act := labv1.ChangeAction_CHANGE_ACTION_NOT_FOUND
		if f.exists(n) {
			act = labv1.ChangeAction_CHANGE_ACTION_DELETED
		}
		changes = append(changes, &labv1.Change{Name: n, Action: act})
	}
	return &labv1.DeleteTopologyResponse{Changes: changes}, nil
}

func (f *fakeServer) deleteCall(method, name, what string) error {
	f.record(method + " " + name)
	if !f.exists(name) {
		return status.Errorf(codes.NotFound, "%s %q not found", what, name)
	}
	return nil
}

func (f *fakeServer) DeleteLab(_ context.Context, req *labv1.DeleteLabRequest) (*labv1.DeleteLabResponse, error) {
	return &labv1.DeleteLabResponse{}, f.deleteCall("DeleteLab", req.GetName(), "lab")
}

func (f *fakeServer) DeleteNetwork(_ context.Context, req *labv1.DeleteNetworkRequest) (*labv1.DeleteNetworkResponse, error) {
	return &labv1.DeleteNetworkResponse{}, f.deleteCall("DeleteNetwork", req.GetName(), "network")
}

func (f *fakeServer) DeleteHost(_ context.Context, req *labv1.DeleteHostRequest) (*labv1.DeleteHostResponse, error) {
	return &labv1.DeleteHostResponse{}, f.deleteCall("DeleteHost", req.GetName(), "host")
}

// SetImpairment sets the impairment of a host's interface in the fake's
// data, so that a later call sees it.
func (f *fakeServer) SetImpairment(_ context.Context, req *labv1.SetImpairmentRequest) (*labv1.SetImpairmentResponse, error) {
	f.record(fmt.Sprintf("SetImpairment %s %s {%s}", req.GetHost(), req.GetInterface(), impairSummary(req.GetImpair())))
	h, err := find(f.hosts, req.GetHost(), "host")
	if err != nil {
		return nil, err
	}
	for i, ifc := range h.GetInterfaces() {
		if ifaceName(i, ifc) == req.GetInterface() {
			ifc.Impair = req.GetImpair()
			if proto.Size(ifc.Impair) == 0 {
				ifc.Impair = nil
			}
			return &labv1.SetImpairmentResponse{Host: h}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "interface %q not found on host %s", req.GetInterface(), shortID(h.GetName()))
}

func (f *fakeServer) GetHostStatus(_ context.Context, req *labv1.GetHostStatusRequest) (*labv1.GetHostStatusResponse, error) {
	f.mu.Lock()
	n, starts := f.startsAfter[req.GetName()]
	if starts {
		if f.statusCalled == nil {
			f.statusCalled = map[string]int{}
		}
		f.statusCalled[req.GetName()]++
		n -= f.statusCalled[req.GetName()]
	}
	f.mu.Unlock()
	switch {
	case starts && n >= 0:
		return nil, status.Errorf(codes.Unavailable, "node n2 cannot be reached from here: connection refused")
	case starts:
		return &labv1.GetHostStatusResponse{Status: &labv1.HostStatus{Name: req.GetName(), Node: "n2", Running: true}}, nil
	}
	if st, ok := f.statuses[req.GetName()]; ok {
		return &labv1.GetHostStatusResponse{Status: st}, nil
	}
	if f.exists(req.GetName()) {
		return nil, status.Errorf(codes.Unavailable, "node n2 is unreachable")
	}
	return nil, status.Errorf(codes.NotFound, "host %q not found", req.GetName())
}

func rtt(us int) *durationpb.Duration { return durationpb.New(time.Duration(us) * time.Microsecond) }

func pingStarted(src, dst string) *labv1.PingResponse {
	return &labv1.PingResponse{Event: &labv1.PingResponse_Started{Started: &labv1.PingStarted{Source: src, Destination: dst, Size: 56, PacketSize: 84}}}
}

func pingReply(seq uint32, from string, ttl uint32, us int) *labv1.PingResponse {
	return &labv1.PingResponse{Event: &labv1.PingResponse_Reply{Reply: &labv1.PingReply{Seq: seq, From: from, Ttl: ttl, Bytes: 64, Rtt: rtt(us)}}}
}

func pingError(seq uint32, from, msg string) *labv1.PingResponse {
	return &labv1.PingResponse{Event: &labv1.PingResponse_Error{Error: &labv1.PingError{Seq: seq, From: from, Message: msg}}}
}

func pingTimeout(seq uint32) *labv1.PingResponse {
	return &labv1.PingResponse{Event: &labv1.PingResponse_Timeout{Timeout: &labv1.PingTimeout{Seq: seq}}}
}

// Ping answers by destination.
func (f *fakeServer) Ping(req *labv1.PingRequest, stream labv1.LiveService_PingServer) error {
	f.record(fmt.Sprintf("Ping %s %s count=%d interval=%s timeout=%s ttl=%d size=%d ipv6=%t",
		req.GetHost(), req.GetDestination(), req.GetCount(), req.GetInterval().AsDuration(), req.GetTimeout().AsDuration(),
		req.GetTtl(), req.GetSize(), req.GetIpv6()))
	var events []*labv1.PingResponse
	switch req.GetDestination() {
	case "10.0.2.10":
		events = []*labv1.PingResponse{
			pingStarted("10.0.1.10", "10.0.2.10"),
			pingReply(1, "10.0.2.10", 63, 101),
			pingReply(2, "10.0.2.10", 63, 119),
			pingReply(3, "10.0.2.10", 63, 140),
		}
	case "h2": // a reply, an ICMP error from the router, a local error
		events = []*labv1.PingResponse{
			pingStarted("10.0.1.10", "10.0.2.10"),
			pingReply(1, "10.0.2.10", 63, 2345),
			pingError(2, "10.0.1.1", "Time to live exceeded"),
			pingError(3, "", "Destination Host Unreachable"),
		}
	case "10.0.9.9": // nothing answers
		events = []*labv1.PingResponse{
			pingStarted("10.0.1.10", "10.0.9.9"),
			pingTimeout(1),
			pingTimeout(2),
		}
	case "10.0.2.11": // a timeout among replies, and a duplicate
		events = []*labv1.PingResponse{
			pingStarted("10.0.1.10", "10.0.2.11"),
			pingReply(1, "10.0.2.11", 63, 500),
			pingTimeout(2),
			pingReply(3, "10.0.2.11", 63, 1500),
			pingReply(3, "10.0.2.11", 63, 1700),
			pingReply(4, "10.0.2.11", 63, 12345),
		}
	case "fd00:0:0:1::1":
		events = []*labv1.PingResponse{
			pingStarted("fd00:0:0:1::a", "fd00:0:0:1::1"),
			pingReply(1, "fd00:0:0:1::1", 64, 80),
		}
	case "forever": // one reply, then wait to be cancelled
		if err := stream.Send(pingStarted("10.0.1.10", "10.0.2.10")); err != nil {
			return err
		}
		if err := stream.Send(pingReply(1, "10.0.2.10", 63, 250)); err != nil {
			return err
		}
		<-stream.Context().Done()
		return stream.Context().Err()
	case "broken": // the stream breaks after one probe
		if err := stream.Send(pingStarted("10.0.1.10", "10.0.2.10")); err != nil {
			return err
		}
		if err := stream.Send(pingReply(1, "10.0.2.10", 63, 250)); err != nil {
			return err
		}
		return status.Error(codes.Internal, "host labs/demo/hosts/h1 stopped")
	default:
		return status.Errorf(codes.InvalidArgument, "destination: %q is neither an address nor a host of lab demo", req.GetDestination())
	}
	for _, e := range events {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	return nil
}

func probe(from string, us int, annotation string) *labv1.TracerouteProbe {
	if from == "" {
		return &labv1.TracerouteProbe{}
	}
	return &labv1.TracerouteProbe{From: from, Rtt: rtt(us), Annotation: annotation}
}

func hop(ttl uint32, reached bool, probes ...*labv1.TracerouteProbe) *labv1.TracerouteResponse {
	return &labv1.TracerouteResponse{Event: &labv1.TracerouteResponse_Hop{Hop: &labv1.TracerouteHop{Ttl: ttl, Probes: probes, Reached: reached}}}
}

// Traceroute answers by destination.
func (f *fakeServer) Traceroute(req *labv1.TracerouteRequest, stream labv1.LiveService_TracerouteServer) error {
	f.record(fmt.Sprintf("Traceroute %s %s max_hops=%d probes=%d timeout=%s ipv6=%t",
		req.GetHost(), req.GetDestination(), req.GetMaxHops(), req.GetProbes(), req.GetTimeout().AsDuration(), req.GetIpv6()))
	started := func(dst string, maxHops uint32) *labv1.TracerouteResponse {
		return &labv1.TracerouteResponse{Event: &labv1.TracerouteResponse_Started{Started: &labv1.TracerouteStarted{Source: "10.0.1.10", Destination: dst, MaxHops: maxHops}}}
	}
	var events []*labv1.TracerouteResponse
	switch req.GetDestination() {
	case "10.0.2.10":
		events = []*labv1.TracerouteResponse{
			started("10.0.2.10", 30),
			hop(1, false, probe("10.0.1.1", 105, ""), probe("10.0.1.1", 90, ""), probe("10.0.1.1", 88, "")),
			hop(2, true, probe("10.0.2.10", 201, ""), probe("10.0.2.10", 187, ""), probe("10.0.2.10", 190, "")),
		}
	case "h2": // load-balanced first hop, an unreachable, silence
		events = []*labv1.TracerouteResponse{
			started("10.0.2.10", 4),
			hop(1, false, probe("10.0.1.1", 105, ""), probe("10.0.1.2", 95, ""), probe("10.0.1.2", 97, "")),
			hop(2, false, probe("", 0, ""), probe("10.0.3.1", 1250, "!H"), probe("10.0.3.1", 1300, "!H")),
			hop(3, false, probe("", 0, ""), probe("", 0, ""), probe("", 0, "")),
			hop(4, false, probe("", 0, ""), probe("10.0.3.1", 12345, ""), probe("", 0, "")),
		}
	default:
		return status.Errorf(codes.NotFound, "host %q not found", req.GetHost())
	}
	for _, e := range events {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	return nil
}

// ListConnections answers for h1 (listeners, connections in several
// states, UDP sockets) and h2 (nothing); other hosts are unavailable.
func (f *fakeServer) ListConnections(_ context.Context, req *labv1.ListConnectionsRequest) (*labv1.ListConnectionsResponse, error) {
	f.record("ListConnections " + req.GetHost())
	switch req.GetHost() {
	case "labs/demo/hosts/h1":
		return &labv1.ListConnectionsResponse{Connections: []*labv1.Connection{
			{Protocol: "tcp", State: "LISTEN", LocalAddress: "0.0.0.0:80", RemoteAddress: "*"},
			// The receive sequence space wraps: rcv_nxt is below irs.
			{Protocol: "tcp", State: "ESTABLISHED", LocalAddress: "10.0.1.10:49152", RemoteAddress: "10.0.2.10:80", Tcp: &labv1.TCPInfo{
				Iss: 1_000_000, Irs: 4_294_967_000, SndUna: 1_001_001, SndNxt: 1_002_449, RcvNxt: 11_705,
				SndWnd: 4_194_304, RcvWnd: 4_194_304, SndWscale: 7, RcvWscale: 7, Mss: 1448, Cwnd: 14480, Ssthresh: 1 << 30,
				Srtt: rtt(50), Rttvar: rtt(20), Rto: rtt(200_000), CongestionControl: "cubic",
				BytesSent: 2448, BytesAcked: 1000, BytesReceived: 12_000, SendQueue: 1448, RecvQueue: 120, Sack: true, Timestamps: true,
			}},
			{Protocol: "tcp", State: "TIME-WAIT", LocalAddress: "[fd00:0:0:1::a]:49153", RemoteAddress: "[fd00:0:0:1::1]:22", Tcp: &labv1.TCPInfo{
				Iss: 7, Irs: 9, SndUna: 60_009, SndNxt: 60_009, RcvNxt: 311,
				SndWnd: 65_535, RcvWnd: 65_535, Mss: 1428, Cwnd: 2856, Ssthresh: 28_560,
				Srtt: rtt(1234), Rttvar: rtt(617), Rto: rtt(201_500), Retransmits: 3, CongestionControl: "newreno",
				BytesSent: 60_000, BytesAcked: 60_000, BytesReceived: 300,
			}},
			{Protocol: "udp", State: "UNCONN", LocalAddress: "0.0.0.0:9", RemoteAddress: "*"},
			{Protocol: "udp", State: "ESTAB", LocalAddress: "10.0.1.10:5353", RemoteAddress: "10.0.1.1:53"},
		}}, nil
	case "labs/demo/hosts/h2":
		return &labv1.ListConnectionsResponse{}, nil
	}
	if f.exists(req.GetHost()) {
		return nil, status.Errorf(codes.Unavailable, "node n2 is unreachable")
	}
	return nil, status.Errorf(codes.NotFound, "host %q not found", req.GetHost())
}

func fetchHead(code int32, st string, headers ...string) *labv1.FetchResponse {
	return &labv1.FetchResponse{Event: &labv1.FetchResponse_Head{Head: &labv1.FetchHead{
		Proto: "HTTP/1.1", StatusCode: code, Status: st, Headers: headers,
		LocalAddress: "10.0.1.10:49152", RemoteAddress: "10.0.2.10:80",
	}}}
}

func fetchBody(s string) *labv1.FetchResponse {
	return &labv1.FetchResponse{Event: &labv1.FetchResponse_Body{Body: []byte(s)}}
}

// Fetch answers by URL.
func (f *fakeServer) Fetch(req *labv1.FetchRequest, stream labv1.LiveService_FetchServer) error {
	f.record(fmt.Sprintf("Fetch %s %s timeout=%s", req.GetHost(), req.GetUrl(), req.GetTimeout().AsDuration()))
	var events []*labv1.FetchResponse
	switch req.GetUrl() {
	case "http://10.0.2.10/", "http://h2/":
		events = []*labv1.FetchResponse{
			fetchHead(200, "200 OK", "Content-Type: text/html; charset=utf-8", "Content-Length: 42", "Date: Fri, 02 Jan 2026 12:00:00 GMT"),
			fetchBody("<html><body>\n"),
			fetchBody("hello from h2\n"),
			fetchBody("</body></html>\n"),
			fetchBody(""), // an empty chunk changes nothing
		}
	case "http://h2/missing":
		events = []*labv1.FetchResponse{
			fetchHead(404, "404 Not Found", "Content-Type: text/plain; charset=utf-8", "Content-Length: 19"),
			fetchBody("404 page not found\n"),
		}
	case "http://h2/broken": // the body stops part-way
		for _, e := range []*labv1.FetchResponse{fetchHead(200, "200 OK", "Content-Length: 1000"), fetchBody("partial")} {
			if err := stream.Send(e); err != nil {
				return err
			}
		}
		return status.Error(codes.Unavailable, "reading the body: unexpected EOF")
	case "http://nowhere/":
		return status.Error(codes.Unavailable, `GET http://nowhere/: dial tcp nowhere:80: "nowhere" is neither an IP address nor a host of lab demo`)
	default:
		return status.Errorf(codes.InvalidArgument, "url: %q is not an http:// URL", req.GetUrl())
	}
	for _, e := range events {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	return nil
}

func benchProgress(bytes uint64, elapsed time.Duration) *labv1.BenchResponse {
	return &labv1.BenchResponse{Event: &labv1.BenchResponse_Progress{Progress: &labv1.BenchProgress{Bytes: bytes, Elapsed: durationpb.New(elapsed)}}}
}

func benchResult(bytes uint64, seconds float64, retransmits uint64) *labv1.BenchResponse {
	return &labv1.BenchResponse{Event: &labv1.BenchResponse_Result{Result: &labv1.BenchResult{
		Bytes: bytes, Seconds: seconds, Gbps: float64(bytes) * 8 / seconds / 1e9, Retransmits: retransmits,
	}}}
}

// Bench answers by destination.
func (f *fakeServer) Bench(req *labv1.BenchRequest, stream labv1.LiveService_BenchServer) error {
	f.record(fmt.Sprintf("Bench %s %s bytes=%d duration=%s ipv6=%t",
		req.GetHost(), req.GetDestination(), req.GetBytes(), req.GetDuration().AsDuration(), req.GetIpv6()))
	var events []*labv1.BenchResponse
	switch req.GetDestination() {
	case "h2":
		events = []*labv1.BenchResponse{
			benchProgress(123_400_000, 1000*time.Millisecond),
			benchProgress(248_100_000, 2001*time.Millisecond),
			benchProgress(1_240_000_000, 10_002*time.Millisecond),
			benchResult(1_250_000_000, 10.0041, 12),
		}
	case "10.0.2.10": // a small, quick run: no progress
		events = []*labv1.BenchResponse{benchResult(req.GetBytes(), 0.0123, 1)}
	case "fd00:0:0:2::10": // a slow link
		events = []*labv1.BenchResponse{
			benchProgress(1_210_000, 1000*time.Millisecond),
			benchResult(2_500_000, 2.01, 0),
		}
	case "broken":
		if err := stream.Send(benchProgress(100_000_000, time.Second)); err != nil {
			return err
		}
		return status.Error(codes.Aborted, "after 120000000 bytes: connection reset by peer")
	case "silent": // ends without a result
		events = []*labv1.BenchResponse{benchProgress(100_000_000, time.Second)}
	default:
		return status.Errorf(codes.Unavailable, "connect to %s port 9 (discard): connection refused", req.GetDestination())
	}
	for _, e := range events {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	return nil
}

// Watch streams the canned resources of the one kind asked for as ADDED,
// then SYNCED, then a canned ADDED, MODIFIED and DELETED (with its last
// state), and last a DELETED of "gone" with only its name; then it waits
// for the client to hang up. Parent labs/broken fails after SYNCED, as a
// labd shutting down does.
func (f *fakeServer) Watch(req *labv1.WatchRequest, stream labv1.LabService_WatchServer) error {
	f.record(fmt.Sprintf("Watch %s %s", req.GetParent(), strings.Join(req.GetKinds(), ",")))
	if len(req.GetKinds()) != 1 {
		return status.Error(codes.Unimplemented, "the fake watches one kind at a time")
	}
	parent := req.GetParent()
	var events []*labv1.WatchResponse
	ev := func(rev uint64, typ labv1.WatchEventType, name string, m proto.Message) {
		e := &labv1.WatchResponse{Revision: rev, Type: typ, Name: name}
		switch m := m.(type) {
		case *labv1.Lab:
			e.Resource = &labv1.WatchResponse_Lab{Lab: m}
		case *labv1.Network:
			e.Resource = &labv1.WatchResponse_Network{Network: m}
		case *labv1.Host:
			e.Resource = &labv1.WatchResponse_Host{Host: m}
		}
		events = append(events, e)
	}
	const (
		added    = labv1.WatchEventType_WATCH_EVENT_TYPE_ADDED
		modified = labv1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED
		deleted  = labv1.WatchEventType_WATCH_EVENT_TYPE_DELETED
		synced   = labv1.WatchEventType_WATCH_EVENT_TYPE_SYNCED
	)
	lab := "labs/demo"
	if parent != allLabs {
		lab = parent
	}
	switch req.GetKinds()[0] {
	case "labs":
		for _, l := range f.labs {
			if parent == allLabs || l.GetName() == parent {
				ev(7, added, l.GetName(), l)
			}
		}
		ev(7, synced, "", nil)
		ev(8, added, "labs/new", &labv1.Lab{Name: "labs/new", CreateTime: timestamppb.New(t0)})
		d := proto.Clone(f.labs[0]).(*labv1.Lab)
		d.HostCount++
		ev(9, modified, d.GetName(), d)
		ev(10, deleted, "labs/empty", f.labs[2])
		ev(11, deleted, "labs/gone", nil)
	case "networks":
		nets, _ := under(f, f.networks, parent)
		for _, n := range nets {
			ev(7, added, n.GetName(), n)
		}
		ev(7, synced, "", nil)
		ev(8, added, lab+"/networks/lan3", &labv1.Network{Name: lab + "/networks/lan3", Ipv4: "10.0.3.0/24", Vni: 103})
		ev(9, modified, lab+"/networks/lan1", &labv1.Network{Name: lab + "/networks/lan1", Ipv4: "10.0.1.0/24", Mtu: 1400, Vni: 101})
		ev(11, deleted, lab+"/networks/gone", nil)
	case "hosts":
		hosts, _ := under(f, f.hosts, parent)
		for _, h := range hosts {
			ev(7, added, h.GetName(), h)
		}
		ev(7, synced, "", nil)
		ev(8, added, lab+"/hosts/h3", &labv1.Host{Name: lab + "/hosts/h3", Node: "n2",
			Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan1", Ipv4: "10.0.1.12/24"}}})
		h1 := proto.Clone(f.hosts[0]).(*labv1.Host)
		h1.Name = lab + "/hosts/h1"
		h1.Interfaces[0].Ipv6 = ""
		ev(9, modified, h1.GetName(), h1)
		h2 := proto.Clone(f.hosts[2]).(*labv1.Host)
		h2.Name = lab + "/hosts/h2"
		ev(10, deleted, h2.GetName(), h2)
		ev(11, deleted, lab+"/hosts/gone", nil)
	}
	for _, e := range events {
		if err := stream.Send(e); err != nil {
			return err
		}
		if parent == "labs/broken" && e.GetType() == synced {
			return status.Error(codes.Unavailable, "labd is shutting down")
		}
	}
	<-stream.Context().Done()
	return nil
}

func (f *fakeServer) WatchNodes(_ *labv1.WatchNodesRequest, stream labv1.NodeService_WatchNodesServer) error {
	f.record("WatchNodes")
	const (
		added    = labv1.WatchEventType_WATCH_EVENT_TYPE_ADDED
		modified = labv1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED
		deleted  = labv1.WatchEventType_WATCH_EVENT_TYPE_DELETED
		synced   = labv1.WatchEventType_WATCH_EVENT_TYPE_SYNCED
	)
	var events []*labv1.WatchNodesResponse
	for _, n := range f.nodes {
		events = append(events, &labv1.WatchNodesResponse{Type: added, Name: n.GetName(), Node: n})
	}
	events = append(events, &labv1.WatchNodesResponse{Type: synced})
	n2 := proto.Clone(f.nodes[1]).(*labv1.Node)
	n2.State, n2.Role = labv1.NodeState_NODE_STATE_ALIVE, labv1.NodeRole_NODE_ROLE_CONTROL
	events = append(events,
		&labv1.WatchNodesResponse{Type: modified, Name: n2.GetName(), Node: n2},
		&labv1.WatchNodesResponse{Type: added, Name: "nodes/assistant-laptop", Node: &labv1.Node{
			Name: "nodes/assistant-laptop", State: labv1.NodeState_NODE_STATE_ALIVE, Role: labv1.NodeRole_NODE_ROLE_MEMBER,
			ApiAddress: "127.0.0.4:7700", GossipAddress: "127.0.0.4:7946", OverlayAddress: "127.0.0.4:6081", StartTime: timestamppb.New(t0)}},
		&labv1.WatchNodesResponse{Type: deleted, Name: "nodes/gone", Node: &labv1.Node{Name: "nodes/gone", State: labv1.NodeState_NODE_STATE_LEFT}},
	)
	for _, e := range events {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

func (f *fakeServer) PromoteNode(_ context.Context, req *labv1.PromoteNodeRequest) (*labv1.PromoteNodeResponse, error) {
	f.record("PromoteNode " + req.GetName())
	n, err := f.roleChange(req.GetName())
	return &labv1.PromoteNodeResponse{Node: n}, err
}

func (f *fakeServer) CreateNodeInvite(_ context.Context, req *labv1.CreateNodeInviteRequest) (*labv1.CreateNodeInviteResponse, error) {
	f.record(fmt.Sprintf("CreateNodeInvite %s owner=%q control=%v ttl=%v", req.GetNodeId(), req.GetOwner(), req.GetControl(), req.GetTtl().AsDuration()))
	if req.GetOwner() == "nobody" {
		return nil, status.Errorf(codes.NotFound, "user %q not found: the owner must be an existing user (labctl user add)", req.GetOwner())
	}
	cmd := "labd --name " + req.GetNodeId()
	if req.GetControl() {
		cmd += " --control"
	}
	return &labv1.CreateNodeInviteResponse{Token: "lne1:TOKEN", Command: cmd + " --join 127.0.0.1:7946 --enroll lne1:TOKEN"}, nil
}

func (f *fakeServer) RemoveNode(_ context.Context, req *labv1.RemoveNodeRequest) (*labv1.RemoveNodeResponse, error) {
	f.record("RemoveNode " + req.GetName())
	n, err := find(f.nodes, req.GetName(), "node")
	if err != nil {
		return nil, err
	}
	return &labv1.RemoveNodeResponse{Node: n}, nil
}

func (f *fakeServer) DemoteNode(_ context.Context, req *labv1.DemoteNodeRequest) (*labv1.DemoteNodeResponse, error) {
	f.record("DemoteNode " + req.GetName())
	n, err := f.roleChange(req.GetName())
	return &labv1.DemoteNodeResponse{Node: n}, err
}

// roleChange: n3 has left (the control plane refuses it), an unknown node
// is not found.
func (f *fakeServer) roleChange(name string) (*labv1.Node, error) {
	n, err := find(f.nodes, name, "node")
	if err != nil {
		return nil, err
	}
	if n.GetState() == labv1.NodeState_NODE_STATE_LEFT {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s has left: it cannot vote", name)
	}
	return n, nil
}
