package api_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// demoWithServices is the two-LAN lab with h2 running services.
func demoWithServices() *labv1.Topology {
	topo := demo()
	topo.Hosts[2].Services = []string{"echo", "discard", "http"}
	return topo
}

func TestServicesAndConnections(t *testing.T) {
	e := newEnv(t, true)
	e.apply(t, demoWithServices())
	e.waitRunning(t, "labs/demo/hosts/r1", "labs/demo/hosts/h1", "labs/demo/hosts/h2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Fetch across the router, by host name and by address.
	for _, url := range []string{"http://h2/bytes/1000000", "http://[fd00:0:0:2::2]/bytes/1000000"} {
		stream, err := e.live.Fetch(ctx, &labv1.FetchRequest{Host: "labs/demo/hosts/h1", Url: url})
		if err != nil {
			t.Fatal(err)
		}
		var head *labv1.FetchHead
		n := 0
		for {
			r, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", url, err)
			}
			if h := r.GetHead(); h != nil {
				head = h
			}
			n += len(r.GetBody())
		}
		if head == nil || head.StatusCode != 200 || n != 1000000 {
			t.Fatalf("%s: head %v, %d bytes", url, head, n)
		}
	}
	stream, err := e.live.Fetch(ctx, &labv1.FetchRequest{Host: "labs/demo/hosts/h1", Url: "http://h2/"})
	if err != nil {
		t.Fatal(err)
	}
	var page []byte
	for {
		r, err := stream.Recv()
		if err != nil {
			break
		}
		page = append(page, r.GetBody()...)
	}
	if !strings.Contains(string(page), "10.0.1.2") || !strings.Contains(string(page), "h2") {
		t.Errorf("page should name h2 and the client 10.0.1.2:\n%s", page)
	}

	// Bench to discard.
	bs, err := e.live.Bench(ctx, &labv1.BenchRequest{Host: "labs/demo/hosts/h1", Destination: "h2", Bytes: 20 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var res *labv1.BenchResult
	for {
		r, err := bs.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.GetResult() != nil {
			res = r.GetResult()
		}
	}
	if res == nil || res.Bytes != 20<<20 || res.Gbps <= 0 {
		t.Fatalf("bench result %v", res)
	}
	t.Logf("bench h1 -> h2 through r1: %.2f Gbit/s, %d retransmits", res.Gbps, res.Retransmits)

	conns, err := e.live.ListConnections(ctx, &labv1.ListConnectionsRequest{Host: "labs/demo/hosts/h2"})
	if err != nil {
		t.Fatal(err)
	}
	var listening []string
	for _, c := range conns.Connections {
		if c.State == "LISTEN" || c.State == "UNCONN" {
			listening = append(listening, c.Protocol+" "+c.LocalAddress)
		}
	}
	for _, want := range []string{"tcp [::]:7", "tcp [::]:9", "tcp [::]:80", "udp [::]:7", "udp [::]:9"} {
		if !strings.Contains(strings.Join(listening, ","), want) {
			t.Errorf("missing %s in %v", want, listening)
		}
	}

	// Bad input.
	if _, err := e.live.ListConnections(ctx, &labv1.ListConnectionsRequest{Host: "labs/demo/hosts/nope"}); err == nil {
		t.Error("connections of a missing host")
	}
	fs, _ := e.live.Fetch(ctx, &labv1.FetchRequest{Host: "labs/demo/hosts/h1", Url: "ftp://h2/"})
	if _, err := fs.Recv(); err == nil {
		t.Error("ftp URL accepted")
	} else {
		wantCode(t, err, codes.InvalidArgument)
	}
}

func TestServiceValidation(t *testing.T) {
	e := newEnv(t, false)
	topo := demo()
	topo.Hosts[1].Services = []string{"echo", "telnet"}
	_, err := e.lab.Apply(context.Background(), &labv1.ApplyRequest{Topology: topo})
	wantField(t, err, "topology.hosts[1].services[1]")
}

// TestPathMTU: h1 and h2 sit on 1500-byte LANs joined by a 1280-byte
// transit network, so the MSS they agree on is too big for the path. The
// router answers with fragmentation-needed / packet-too-big and TCP lowers
// its segment size (RFC 1191, RFC 8201): the download completes.
func TestPathMTU(t *testing.T) {
	e := newEnv(t, true)
	topo := &labv1.Topology{
		Lab: "pmtu",
		Networks: []*labv1.Network{
			{Name: "lan1", Ipv4: "10.0.1.0/24", Ipv6: "fd00:0:0:1::/64"},
			{Name: "transit", Ipv4: "10.0.9.0/24", Ipv6: "fd00:0:0:9::/64", Mtu: 1280},
			{Name: "lan2", Ipv4: "10.0.2.0/24", Ipv6: "fd00:0:0:2::/64"},
		},
		Hosts: []*labv1.Host{
			{Name: "r1", Forwarding: true, Interfaces: []*labv1.Interface{{Network: "lan1", Ipv4: "10.0.1.1", Ipv6: "fd00:0:0:1::1"}, {Network: "transit", Ipv4: "10.0.9.1", Ipv6: "fd00:0:0:9::1"}},
				Routes: []*labv1.Route{{To: "10.0.2.0/24", Via: "10.0.9.2"}, {To: "fd00:0:0:2::/64", Via: "fd00:0:0:9::2"}}},
			{Name: "r2", Forwarding: true, Interfaces: []*labv1.Interface{{Network: "transit", Ipv4: "10.0.9.2", Ipv6: "fd00:0:0:9::2"}, {Network: "lan2", Ipv4: "10.0.2.1", Ipv6: "fd00:0:0:2::1"}},
				Routes: []*labv1.Route{{To: "10.0.1.0/24", Via: "10.0.9.1"}, {To: "fd00:0:0:1::/64", Via: "fd00:0:0:9::1"}}},
			{Name: "h1", Interfaces: []*labv1.Interface{{Network: "lan1"}}, Routes: []*labv1.Route{{To: "default", Via: "10.0.1.1"}, {To: "default", Via: "fd00:0:0:1::1"}}},
			{Name: "h2", Services: []string{"http"}, Interfaces: []*labv1.Interface{{Network: "lan2"}}, Routes: []*labv1.Route{{To: "default", Via: "10.0.2.1"}, {To: "default", Via: "fd00:0:0:2::1"}}},
		},
	}
	e.apply(t, topo)
	e.waitRunning(t, "labs/pmtu/hosts/r1", "labs/pmtu/hosts/r2", "labs/pmtu/hosts/h1", "labs/pmtu/hosts/h2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, url := range []string{"http://10.0.2.2/bytes/300000", "http://[fd00:0:0:2::2]/bytes/300000"} {
		stream, err := e.live.Fetch(ctx, &labv1.FetchRequest{Host: "labs/pmtu/hosts/h1", Url: url})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			r, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", url, err)
			}
			n += len(r.GetBody())
		}
		if n != 300000 {
			t.Fatalf("%s: %d bytes", url, n)
		}
	}
	st, err := e.live.GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: "labs/pmtu/hosts/r2"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.Ip.TooBig == 0 {
		t.Errorf("r2 never found a packet too big for the transit network: %v", st.Status.Ip)
	}
}
