package api_test

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// captureEnv is the demo lab running, for captures.
func captureEnv(t *testing.T) (*env, context.Context) {
	e := newEnv(t, true)
	e.apply(t, demo())
	e.waitRunning(t, "labs/demo/hosts/r1", "labs/demo/hosts/h1", "labs/demo/hosts/h2")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return e, ctx
}

func TestCaptureValidation(t *testing.T) {
	e, ctx := captureEnv(t)
	c := e.capt
	recvErr := func(req *labv1.CaptureRequest) error {
		st, err := c.Capture(ctx, req)
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}
	for _, tc := range []struct {
		req   *labv1.CaptureRequest
		field string
	}{
		{&labv1.CaptureRequest{Lab: "demo", Targets: []string{"h1"}}, "lab"},
		{&labv1.CaptureRequest{Lab: "labs/demo"}, "targets"},
		{&labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1"}, Protocol: "sctp"}, "protocol"},
		{&labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1"}, Port: 70000}, "port"},
		{&labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1"}, Address: "10.0.0"}, "address"},
		{&labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1", "Bad Name"}}, "targets[1]"},
	} {
		wantField(t, recvErr(tc.req), tc.field)
	}
	for _, targets := range [][]string{{"h9"}, {"h1:eth7"}, {"net/lan9"}} {
		wantCode(t, recvErr(&labv1.CaptureRequest{Lab: "labs/demo", Targets: targets}), codes.NotFound)
	}
	wantCode(t, recvErr(&labv1.CaptureRequest{Lab: "labs/nope", Targets: []string{"h1"}}), codes.NotFound)
}

// TestCapture: a capture of h1 and of lan2 sees a ping's packets at each
// interface in time order, the router's drop of an expiring one with its
// reason, and ends after count packets with stats.
func TestCapture(t *testing.T) {
	e, ctx := captureEnv(t)
	c := e.capt

	// 2 pings through r1 cross the 4 interfaces twice each (16 packets);
	// a ping with TTL 1 dies at r1:eth0, whose time exceeded goes back
	// through r1:eth0 to h1:eth0 (4 more).
	st, err := c.Capture(ctx, &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1", "net/lan2", "r1:eth0"}, Protocol: "icmp", Count: 20})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ci := range m.GetStarted().GetInterfaces() {
		names = append(names, ci.Name)
	}
	if got := len(names); got != 4 {
		t.Fatalf("started with interfaces %v, want h1:eth0, r1:eth1, h2:eth0, r1:eth0", names)
	}
	ping := func(ttl uint32, count int32) {
		ps, err := e.live.Ping(ctx, &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "10.0.2.2", Count: count, Ttl: ttl, Interval: nil})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := ps.Recv(); err != nil {
				break
			}
		}
	}
	ping(0, 2)
	ping(1, 1)
	seen := map[string]int{}
	var last time.Time
	var ttlDrop bool
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if s := m.GetStats(); s != nil {
			if s.Done && s.Packets != 20 {
				t.Errorf("done after %d packets, want 20", s.Packets)
			}
			continue
		}
		for _, p := range m.GetPackets().GetPackets() {
			if tm := p.Time.AsTime(); tm.Before(last) {
				t.Errorf("packet at %v after one at %v", tm, last)
			} else {
				last = tm
			}
			seen[p.Interface+" "+p.Direction.String()]++
			if p.Interface == "r1:eth0" && p.Drop == "TTL exceeded" {
				ttlDrop = true
			}
		}
	}
	if !ttlDrop {
		t.Errorf("r1:eth0 never reported the TTL-exceeded drop; saw %v", seen)
	}
	for _, k := range []string{"h1:eth0 CAPTURE_DIRECTION_OUT", "h1:eth0 CAPTURE_DIRECTION_IN", "r1:eth1 CAPTURE_DIRECTION_OUT", "h2:eth0 CAPTURE_DIRECTION_IN"} {
		if seen[k] == 0 {
			t.Errorf("nothing seen as %s; saw %v", k, seen)
		}
	}
}

// TestCaptureFollowsRestart: a host restarted by a change to its spec
// runs a new stack; a capture of it goes on with the new one.
func TestCaptureFollowsRestart(t *testing.T) {
	e, ctx := captureEnv(t)
	c := e.capt
	st, err := c.Capture(ctx, &labv1.CaptureRequest{Lab: "labs/demo", Targets: []string{"h1"}, Protocol: "icmp"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil { // started
		t.Fatal(err)
	}
	old, _ := e.rt.Host("labs/demo/hosts/h1")
	topo := demo()
	topo.Hosts[1].Routes = append(topo.Hosts[1].Routes, &labv1.Route{To: "192.0.2.0/24", Via: "10.0.1.1"})
	e.apply(t, topo)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if h, ok := e.rt.Host("labs/demo/hosts/h1"); ok && h != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("h1 did not restart")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Ping until the capture shows the new stack's packets (it follows
	// within about a second).
	got := make(chan bool, 1)
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				return
			}
			if len(m.GetPackets().GetPackets()) > 0 {
				got <- true
				return
			}
		}
	}()
	for {
		ps, err := e.live.Ping(ctx, &labv1.PingRequest{Host: "labs/demo/hosts/h1", Destination: "10.0.1.1", Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := ps.Recv(); err != nil {
				break
			}
		}
		select {
		case <-got:
			return
		case <-time.After(200 * time.Millisecond):
		}
		if ctx.Err() != nil {
			t.Fatal("the capture saw nothing of the restarted host")
		}
	}
}
