package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// runningDemo applies the demo lab with the runtime on and waits for it.
func runningDemo(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, true)
	e.apply(t, demo())
	e.waitRunning(t, "labs/demo/hosts/r1", "labs/demo/hosts/h1", "labs/demo/hosts/h2")
	return e
}

// addrs returns a host's first IPv4 and IPv6 addresses from its spec.
func (e *env) addrs(t *testing.T, name string) (v4, v6 string) {
	t.Helper()
	ifc := e.host(t, name).Interfaces[0]
	return netip.MustParsePrefix(ifc.Ipv4).Addr().String(), netip.MustParsePrefix(ifc.Ipv6).Addr().String()
}

func ping(t *testing.T, e *env, req *labv1.PingRequest) ([]*labv1.PingResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := e.live.Ping(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []*labv1.PingResponse
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func traceroute(t *testing.T, e *env, req *labv1.TracerouteRequest) ([]*labv1.TracerouteResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := e.live.Traceroute(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []*labv1.TracerouteResponse
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func ms(n int) *durationpb.Duration { return durationpb.New(time.Duration(n) * time.Millisecond) }

func TestPing(t *testing.T) {
	e := runningDemo(t)
	h1v4, h1v6 := e.addrs(t, "labs/demo/hosts/h1")
	h2v4, h2v6 := e.addrs(t, "labs/demo/hosts/h2")
	for _, tc := range []struct {
		dest, from, src string
		ipv6            bool
	}{
		{h2v4, h2v4, h1v4, false},
		{h2v6, h2v6, h1v6, false},
		{"h2", h2v4, h1v4, false},
		{"labs/demo/hosts/h2", h2v4, h1v4, false},
		{"h2", h2v6, h1v6, true},
	} {
		t.Run(fmt.Sprintf("%s ipv6=%v", tc.dest, tc.ipv6), func(t *testing.T) {
			msgs, err := ping(t, e, &labv1.PingRequest{
				Host: "labs/demo/hosts/h1", Destination: tc.dest, Count: 3, Interval: ms(20), Ipv6: tc.ipv6,
			})
			if err != nil {
				t.Fatalf("Ping: %v", err)
			}
			if len(msgs) != 4 {
				t.Fatalf("%d messages, want started + 3 replies: %v", len(msgs), msgs)
			}
			started := msgs[0].GetStarted()
			if started == nil {
				t.Fatalf("first message %v, want started", msgs[0])
			}
			header := uint32(20)
			if strings.Contains(tc.from, ":") {
				header = 40
			}
			want := &labv1.PingStarted{Source: tc.src, Destination: tc.from, Size: 56, PacketSize: 56 + 8 + header}
			if started.Source != want.Source || started.Destination != want.Destination || started.Size != want.Size || started.PacketSize != want.PacketSize {
				t.Errorf("started = %v, want %v", started, want)
			}
			seqs := map[uint32]bool{}
			for _, m := range msgs[1:] {
				r := m.GetReply()
				if r == nil {
					t.Fatalf("message %v, want a reply", m)
				}
				if r.From != tc.from || r.Ttl != 63 || r.Bytes != 64 || r.Rtt.AsDuration() <= 0 {
					t.Errorf("reply %v: want from %s, ttl 63, 64 bytes, positive rtt", r, tc.from)
				}
				seqs[r.Seq] = true
			}
			if !seqs[1] || !seqs[2] || !seqs[3] {
				t.Errorf("reply sequence numbers %v, want 1, 2, 3", seqs)
			}
		})
	}
}

// pingErrors pings once and returns the PingError it must get.
func pingError(t *testing.T, e *env, req *labv1.PingRequest) *labv1.PingError {
	t.Helper()
	req.Count, req.Interval = 1, ms(20)
	msgs, err := ping(t, e, req)
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if len(msgs) != 2 || msgs[0].GetStarted() == nil || msgs[1].GetError() == nil {
		t.Fatalf("messages %v, want started and an error", msgs)
	}
	return msgs[1].GetError()
}

func TestPingErrors(t *testing.T) {
	e := runningDemo(t)
	h2v4, h2v6 := e.addrs(t, "labs/demo/hosts/h2")
	for _, tc := range []struct {
		name string
		req  *labv1.PingRequest
		want *labv1.PingError
	}{
		{"ttl exceeded", &labv1.PingRequest{Destination: h2v4, Ttl: 1},
			&labv1.PingError{Seq: 1, From: "10.0.1.1", Message: "Time to live exceeded", IcmpType: 11, IcmpCode: 0}},
		{"hop limit exceeded", &labv1.PingRequest{Destination: h2v6, Ttl: 1},
			&labv1.PingError{Seq: 1, From: "fd00:0:0:1::1", Message: "Time exceeded: Hop limit", IcmpType: 3, IcmpCode: 0}},
		{"host unreachable", &labv1.PingRequest{Destination: "10.0.2.99"},
			&labv1.PingError{Seq: 1, From: "10.0.1.1", Message: "Destination Host Unreachable", IcmpType: 3, IcmpCode: 1}},
		{"address unreachable", &labv1.PingRequest{Destination: "fd00:0:0:2::99"},
			&labv1.PingError{Seq: 1, From: "fd00:0:0:1::1", Message: "Destination unreachable: Address unreachable", IcmpType: 1, IcmpCode: 3}},
		{"net unreachable", &labv1.PingRequest{Destination: "10.9.9.9"},
			&labv1.PingError{Seq: 1, From: "10.0.1.1", Message: "Destination Net Unreachable", IcmpType: 3, IcmpCode: 0}},
		{"no route", &labv1.PingRequest{Destination: "fd00:9::9"},
			&labv1.PingError{Seq: 1, From: "fd00:0:0:1::1", Message: "Destination unreachable: No route", IcmpType: 1, IcmpCode: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Host = "labs/demo/hosts/h1"
			got := pingError(t, e, tc.req)
			if got.Seq != tc.want.Seq || got.From != tc.want.From || got.Message != tc.want.Message ||
				got.IcmpType != tc.want.IcmpType || got.IcmpCode != tc.want.IcmpCode {
				t.Errorf("error = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPingLocalError(t *testing.T) {
	e := newEnv(t, true)
	topo := demo()
	topo.Hosts[1].Routes = nil // h1 has no default route
	e.apply(t, topo)
	e.waitRunning(t, "labs/demo/hosts/h1")
	_, err := ping(t, e, &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "10.0.2.2", Count: 1})
	wantCode(t, err, codes.FailedPrecondition)

	// A neighbour on the LAN that nobody owns: the sender reports it.
	msgs, err := ping(t, e, &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "10.0.1.99", Count: 2, Interval: ms(10)})
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if len(msgs) != 3 {
		t.Fatalf("messages %v, want started and 2 errors", msgs)
	}
	for _, m := range msgs[1:] {
		if pe := m.GetError(); pe == nil || pe.Message != "Destination Host Unreachable" || pe.From != "" {
			t.Errorf("message %v, want a local Destination Host Unreachable", m)
		}
	}
}

func TestPingTimeout(t *testing.T) {
	e := newEnv(t, true)
	topo := demo()
	topo.Hosts[2].Routes = nil // h2 cannot answer h1
	e.apply(t, topo)
	e.waitRunning(t, "labs/demo/hosts/r1", "labs/demo/hosts/h1", "labs/demo/hosts/h2")
	h2v4, _ := e.addrs(t, "labs/demo/hosts/h2")
	msgs, err := ping(t, e, &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: h2v4, Count: 2, Interval: ms(10), Timeout: ms(50)})
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if len(msgs) != 3 || msgs[1].GetTimeout() == nil || msgs[2].GetTimeout() == nil {
		t.Fatalf("messages %v, want started and 2 timeouts", msgs)
	}
}

func TestPingInvalid(t *testing.T) {
	e := runningDemo(t)
	for _, tc := range []struct {
		name  string
		req   *labv1.PingRequest
		code  codes.Code
		field string
	}{
		{"unknown destination host", &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "h9"}, codes.InvalidArgument, "destination"},
		{"bad destination", &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "not a host"}, codes.InvalidArgument, "destination"},
		{"empty destination", &labv1.PingRequest{Host: "labs/demo/hosts/h1"}, codes.InvalidArgument, "destination"},
		{"host of another lab", &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "labs/other/hosts/h2"}, codes.InvalidArgument, "destination"},
		{"zone", &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "fe80::1%eth0"}, codes.InvalidArgument, "destination"},
		{"bad host name", &labv1.PingRequest{Host: "h1", Destination: "h2"}, codes.InvalidArgument, "host"},
		{"unknown host", &labv1.PingRequest{Host: "labs/demo/hosts/h9", Destination: "h2"}, codes.NotFound, ""},
		{"negative count", &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "h2", Count: -1}, codes.InvalidArgument, "count"},
		{"short interval", &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "h2", Interval: ms(1)}, codes.InvalidArgument, "interval"},
		{"ttl", &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "h2", Ttl: 256}, codes.InvalidArgument, "ttl"},
		{"size", &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "h2", Size: 70000}, codes.InvalidArgument, "size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ping(t, e, tc.req)
			if tc.field != "" {
				wantField(t, err, tc.field)
			} else {
				wantCode(t, err, tc.code)
			}
		})
	}
}

// hops returns each hop's answering address (all probes must agree) and
// whether the last hop reached the destination.
func hops(t *testing.T, msgs []*labv1.TracerouteResponse) []string {
	t.Helper()
	if len(msgs) == 0 || msgs[0].GetStarted() == nil {
		t.Fatalf("messages %v, want started first", msgs)
	}
	var out []string
	for i, m := range msgs[1:] {
		h := m.GetHop()
		if h == nil {
			t.Fatalf("message %v, want a hop", m)
		}
		if h.Ttl != uint32(i+1) {
			t.Errorf("hop %d has ttl %d", i+1, h.Ttl)
		}
		from := h.Probes[0].From
		for _, p := range h.Probes {
			if p.From != from || p.Rtt.AsDuration() <= 0 || p.Annotation != "" {
				t.Errorf("hop %d probe %v, want from %s with a positive rtt", h.Ttl, p, from)
			}
		}
		if last := i == len(msgs)-2; h.Reached != last {
			t.Errorf("hop %d reached = %v, want %v", h.Ttl, h.Reached, last)
		}
		out = append(out, from)
	}
	return out
}

func TestTraceroute(t *testing.T) {
	e := runningDemo(t)
	h2v4, h2v6 := e.addrs(t, "labs/demo/hosts/h2")
	for _, tc := range []struct {
		dest string
		ipv6 bool
		want []string
	}{
		{"h2", false, []string{"10.0.1.1", h2v4}},
		{h2v4, false, []string{"10.0.1.1", h2v4}},
		{"h2", true, []string{"fd00:0:0:1::1", h2v6}},
		{h2v6, false, []string{"fd00:0:0:1::1", h2v6}},
	} {
		t.Run(fmt.Sprintf("%s ipv6=%v", tc.dest, tc.ipv6), func(t *testing.T) {
			msgs, err := traceroute(t, e, &labv1.TracerouteRequest{
				Host: "labs/demo/hosts/h1", Destination: tc.dest, Ipv6: tc.ipv6, Timeout: ms(2000),
			})
			if err != nil {
				t.Fatalf("Traceroute: %v", err)
			}
			if diff := cmp.Diff(tc.want, hops(t, msgs)); diff != "" {
				t.Errorf("hops (-want +got):\n%s", diff)
			}
			if s := msgs[0].GetStarted(); s.MaxHops != 30 || s.Destination != tc.want[len(tc.want)-1] {
				t.Errorf("started = %v", s)
			}
		})
	}
}

func TestTracerouteUnreachable(t *testing.T) {
	e := runningDemo(t)
	// TTL 1 expires at r1; TTL 2 reaches r1's routing, which gives up.
	for _, tc := range []struct{ dest, mark string }{{"10.9.9.9", "!N"}, {"10.0.2.99", "!H"}} {
		msgs, err := traceroute(t, e, &labv1.TracerouteRequest{Host: "labs/demo/hosts/h1", Destination: tc.dest, Probes: 2, Timeout: ms(2000)})
		if err != nil {
			t.Fatalf("Traceroute: %v", err)
		}
		if len(msgs) != 3 {
			t.Fatalf("messages %v, want started and two hops", msgs)
		}
		for i, mark := range []string{"", tc.mark} {
			h := msgs[i+1].GetHop()
			if h.Reached {
				t.Errorf("%s: hop %d reached", tc.dest, h.Ttl)
			}
			for _, p := range h.Probes {
				if p.From != "10.0.1.1" || p.Annotation != mark {
					t.Errorf("%s: hop %d probe %v, want %q from 10.0.1.1", tc.dest, h.Ttl, p, mark)
				}
			}
		}
	}
	_, err := traceroute(t, e, &labv1.TracerouteRequest{Host: "labs/demo/hosts/h1", Destination: "h2", MaxHops: 300})
	wantField(t, err, "max_hops")
	_, err = traceroute(t, e, &labv1.TracerouteRequest{Host: "labs/demo/hosts/h1", Destination: "h2", Probes: 11})
	wantField(t, err, "probes")
	_, err = traceroute(t, e, &labv1.TracerouteRequest{Host: "labs/demo/hosts/h1", Destination: "nobody"})
	wantField(t, err, "destination")
	_, err = traceroute(t, e, &labv1.TracerouteRequest{Host: "labs/demo/hosts/h7", Destination: "h2"})
	wantCode(t, err, codes.NotFound)
}

// chain is hx - ra - rb - rc - hy over networks n1..n4, with static routes
// both ways.
func chain() *labv1.Topology {
	ifc := func(net, v4 string) *labv1.Interface { return &labv1.Interface{Network: net, Ipv4: v4} }
	route := func(to, via string) *labv1.Route { return &labv1.Route{To: to, Via: via} }
	return &labv1.Topology{
		Lab: "chain",
		Networks: []*labv1.Network{
			{Name: "n1", Ipv4: "10.1.1.0/24", Ipv6: "fd00:1:0:1::/64"},
			{Name: "n2", Ipv4: "10.1.2.0/24", Ipv6: "fd00:1:0:2::/64"},
			{Name: "n3", Ipv4: "10.1.3.0/24", Ipv6: "fd00:1:0:3::/64"},
			{Name: "n4", Ipv4: "10.1.4.0/24", Ipv6: "fd00:1:0:4::/64"},
		},
		Hosts: []*labv1.Host{
			{Name: "hx", Interfaces: []*labv1.Interface{ifc("n1", "10.1.1.10")}, Routes: []*labv1.Route{
				route("default", "10.1.1.1"), route("default", "fd00:1:0:1::1")}},
			{Name: "ra", Forwarding: true, Interfaces: []*labv1.Interface{ifc("n1", "10.1.1.1"), ifc("n2", "10.1.2.1")}, Routes: []*labv1.Route{
				route("10.1.3.0/24", "10.1.2.2"), route("10.1.4.0/24", "10.1.2.2"),
				route("fd00:1:0:3::/64", "fd00:1:0:2::2"), route("fd00:1:0:4::/64", "fd00:1:0:2::2")}},
			{Name: "rb", Forwarding: true, Interfaces: []*labv1.Interface{ifc("n2", "10.1.2.2"), ifc("n3", "10.1.3.2")}, Routes: []*labv1.Route{
				route("10.1.1.0/24", "10.1.2.1"), route("10.1.4.0/24", "10.1.3.3"),
				route("fd00:1:0:1::/64", "fd00:1:0:2::1"), route("fd00:1:0:4::/64", "fd00:1:0:3::3")}},
			{Name: "rc", Forwarding: true, Interfaces: []*labv1.Interface{ifc("n3", "10.1.3.3"), ifc("n4", "10.1.4.3")}, Routes: []*labv1.Route{
				route("default", "10.1.3.2"), route("default", "fd00:1:0:3::2")}},
			{Name: "hy", Interfaces: []*labv1.Interface{ifc("n4", "10.1.4.20")}, Routes: []*labv1.Route{
				route("default", "10.1.4.3"), route("default", "fd00:1:0:4::3")}},
		},
	}
}

func TestTracerouteChain(t *testing.T) {
	e := newEnv(t, true)
	e.apply(t, chain())
	e.waitRunning(t, "labs/chain/hosts/hx", "labs/chain/hosts/ra", "labs/chain/hosts/rb", "labs/chain/hosts/rc", "labs/chain/hosts/hy")
	for _, tc := range []struct {
		ipv6 bool
		want []string
	}{
		{false, []string{"10.1.1.1", "10.1.2.2", "10.1.3.3", "10.1.4.20"}},
		{true, []string{"fd00:1:0:1::1", "fd00:1:0:2::2", "fd00:1:0:3::3", "fd00:1:0:4::20"}},
	} {
		msgs, err := traceroute(t, e, &labv1.TracerouteRequest{Host: "labs/chain/hosts/hx", Destination: "hy", Ipv6: tc.ipv6, Timeout: ms(2000)})
		if err != nil {
			t.Fatalf("Traceroute: %v", err)
		}
		if diff := cmp.Diff(tc.want, hops(t, msgs)); diff != "" {
			t.Errorf("ipv6=%v hops (-want +got):\n%s", tc.ipv6, diff)
		}
	}
	// Three routers: the reply comes back with 64 - 3.
	msgs, err := ping(t, e, &labv1.PingRequest{Host: "labs/chain/hosts/hx", Destination: "hy", Count: 1})
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if len(msgs) != 2 || msgs[1].GetReply().GetTtl() != 61 {
		t.Errorf("messages %v, want a reply with ttl 61", msgs)
	}
}

func TestGetHostStatus(t *testing.T) {
	e := runningDemo(t)
	ctx := context.Background()
	get := func(name string) *labv1.HostStatus {
		t.Helper()
		r, err := e.live.GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: name})
		if err != nil {
			t.Fatalf("GetHostStatus %s: %v", name, err)
		}
		return r.Status
	}
	before := get("labs/demo/hosts/h1")
	if !before.Running || before.Node != testNode || before.Name != "labs/demo/hosts/h1" {
		t.Errorf("status = %v", before)
	}
	if len(before.Interfaces) != 1 {
		t.Fatalf("interfaces %v, want 1", before.Interfaces)
	}
	ifc := before.Interfaces[0]
	if ifc.Name != "eth0" || ifc.Network != "lan1" || ifc.Mtu != 1400 ||
		!cmp.Equal(ifc.Addresses, []string{"10.0.1.2/24", "fd00:0:0:1::2/64"}) {
		t.Errorf("interface = %v", ifc)
	}
	type route struct{ Dst, Via, Ifc, Kind string }
	var routes []route
	for _, r := range before.Routes {
		routes = append(routes, route{r.Destination, r.Via, r.Interface, r.Kind})
	}
	wantRoutes := []route{
		{"10.0.1.0/24", "", "eth0", "connected"},
		{"fd00:0:0:1::/64", "", "eth0", "connected"},
		{"0.0.0.0/0", "10.0.1.1", "eth0", "static"},
		{"::/0", "fd00:0:0:1::1", "eth0", "static"},
	}
	less := func(a, b route) bool { return a.Dst < b.Dst }
	if diff := cmp.Diff(wantRoutes, routes, cmpopts.SortSlices(less)); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}

	rbefore := get("labs/demo/hosts/r1")
	if _, err := ping(t, e, &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "h2", Count: 3, Interval: ms(10)}); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	after := get("labs/demo/hosts/h1")
	c0, c1 := before.Interfaces[0].Counters, after.Interfaces[0].Counters
	if c1.TxPackets < c0.TxPackets+3 || c1.RxPackets < c0.RxPackets+3 || c1.TxBytes <= c0.TxBytes || c1.RxBytes <= c0.RxBytes {
		t.Errorf("counters %v -> %v, want 3 more packets each way", c0, c1)
	}
	if after.Ip.Delivered < before.Ip.Delivered+3 {
		t.Errorf("delivered %d -> %d, want 3 more", before.Ip.Delivered, after.Ip.Delivered)
	}
	rafter := get("labs/demo/hosts/r1")
	if rafter.Ip.Forwarded < rbefore.Ip.Forwarded+6 {
		t.Errorf("r1 forwarded %d -> %d, want 6 more", rbefore.Ip.Forwarded, rafter.Ip.Forwarded)
	}
	if len(rafter.Interfaces) != 2 || rafter.Interfaces[1].Network != "lan2" {
		t.Errorf("r1 interfaces = %v", rafter.Interfaces)
	}

	_, err := e.live.GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h9"})
	wantCode(t, err, codes.NotFound)
	_, err = e.live.GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: "h1"})
	wantField(t, err, "name")
}

// TestLiveHostNotRunning checks a host in the store that no runtime runs.
func TestLiveHostNotRunning(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	r, err := e.live.GetHostStatus(context.Background(), &labv1.GetHostStatusRequest{Name: "labs/demo/hosts/h1"})
	if err != nil {
		t.Fatalf("GetHostStatus: %v", err)
	}
	if r.Status.Running || r.Status.Node != testNode {
		t.Errorf("status = %v, want not running on %s", r.Status, testNode)
	}
	_, err = ping(t, e, &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "h2"})
	wantCode(t, err, codes.Unavailable)
}
