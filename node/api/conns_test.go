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
