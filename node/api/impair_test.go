package api_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// badImpairments are impairments with one bad field each, by that field.
var badImpairments = []struct {
	field string
	im    *labv1.Impairment
}{
	{"loss_percent", &labv1.Impairment{LossPercent: 100.5}},
	{"loss_percent", &labv1.Impairment{LossPercent: -1}},
	{"duplicate_percent", &labv1.Impairment{DuplicatePercent: math.NaN()}},
	{"reorder_percent", &labv1.Impairment{ReorderPercent: 200, Delay: ms(10)}},
	{"corrupt_percent", &labv1.Impairment{CorruptPercent: math.Inf(1)}},
	{"delay", &labv1.Impairment{Delay: durationpb.New(61 * time.Second)}},
	{"delay", &labv1.Impairment{Delay: ms(-1)}},
	{"delay", &labv1.Impairment{Delay: &durationpb.Duration{Seconds: 1, Nanos: -5}}},
	{"jitter", &labv1.Impairment{Delay: ms(10), Jitter: durationpb.New(time.Minute + time.Nanosecond)}},
	{"jitter", &labv1.Impairment{Jitter: ms(-5)}},
	{"rate_bps", &labv1.Impairment{RateBps: 7999}},
	{"rate_bps", &labv1.Impairment{RateBps: 1}},
}

// goodImpairment uses every field at its limits.
func goodImpairment() *labv1.Impairment {
	return &labv1.Impairment{
		LossPercent: 100, Delay: durationpb.New(time.Minute), Jitter: durationpb.New(time.Minute),
		DuplicatePercent: 0.001, ReorderPercent: 100, CorruptPercent: 50, RateBps: 8000,
	}
}

func withImpair(t *labv1.Topology, host, ifc int, im *labv1.Impairment) *labv1.Topology {
	t.Hosts[host].Interfaces[ifc].Impair = im
	return t
}

func TestImpairmentValidation(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	ctx := context.Background()
	before := e.snapshot()
	for _, tc := range badImpairments {
		t.Run(tc.field, func(t *testing.T) {
			_, err := e.lab.Apply(ctx, &labv1.ApplyRequest{Topology: withImpair(demo(), 1, 0, tc.im)})
			wantField(t, err, "topology.hosts[1].interfaces[0].impair."+tc.field)

			_, err = e.lab.CreateHost(ctx, &labv1.CreateHostRequest{Parent: "labs/demo", HostId: "h3", Host: &labv1.Host{
				Interfaces: []*labv1.Interface{{Network: "lan1"}, {Network: "lan2", Impair: tc.im}},
			}})
			wantField(t, err, "host.interfaces[1].impair."+tc.field)

			_, err = e.lab.UpdateHost(ctx, &labv1.UpdateHostRequest{
				Host:       &labv1.Host{Name: "labs/demo/hosts/h1", Interfaces: []*labv1.Interface{{Network: "lan1", Impair: tc.im}}},
				UpdateMask: mask("interfaces"),
			})
			wantField(t, err, "host.interfaces[0].impair."+tc.field)

			_, err = e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/h1", Interface: "eth0", Impair: tc.im})
			wantField(t, err, "impair."+tc.field)
			e.unchanged(t, before)
		})
	}

	// Every field at its limit is fine, through every write.
	e.apply(t, withImpair(demo(), 1, 0, goodImpairment()))
	if got := e.host(t, "labs/demo/hosts/h1").Interfaces[0].Impair; !proto.Equal(got, goodImpairment()) {
		t.Errorf("applied impairment = %v", got)
	}
	if _, err := e.lab.CreateHost(ctx, &labv1.CreateHostRequest{Parent: "labs/demo", HostId: "h3", Host: &labv1.Host{
		Interfaces: []*labv1.Interface{{Network: "lan1", Impair: goodImpairment()}},
	}}); err != nil {
		t.Errorf("CreateHost: %v", err)
	}
	if _, err := e.lab.UpdateHost(ctx, &labv1.UpdateHostRequest{
		Host:       &labv1.Host{Name: "labs/demo/hosts/h3", Interfaces: []*labv1.Interface{{Network: "lan1", Impair: &labv1.Impairment{RateBps: 1_000_000_000}}}},
		UpdateMask: mask("interfaces"),
	}); err != nil {
		t.Errorf("UpdateHost: %v", err)
	}
}

func TestSetImpairment(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	ctx := context.Background()
	im := &labv1.Impairment{LossPercent: 10, Delay: ms(20), Jitter: ms(5)}
	resp, err := e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/r1", Interface: "eth1", Impair: im})
	if err != nil {
		t.Fatalf("SetImpairment: %v", err)
	}
	r1 := e.host(t, "labs/demo/hosts/r1")
	if !proto.Equal(resp.Host, r1) {
		t.Errorf("response %v, stored %v", resp.Host, r1)
	}
	if !proto.Equal(r1.Interfaces[1].Impair, im) || r1.Interfaces[0].Impair != nil {
		t.Errorf("interfaces %v: want the impairment on eth1 only", r1.Interfaces)
	}

	// The same again writes nothing.
	before := e.snapshot()
	if _, err := e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/r1", Interface: "eth1", Impair: im}); err != nil {
		t.Fatalf("SetImpairment: %v", err)
	}
	e.unchanged(t, before)

	// Replacing sets exactly the fields given (as tc qdisc change does).
	im2 := &labv1.Impairment{RateBps: 1_000_000}
	if _, err := e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/r1", Interface: "eth1", Impair: im2}); err != nil {
		t.Fatalf("SetImpairment: %v", err)
	}
	if got := e.host(t, "labs/demo/hosts/r1").Interfaces[1].Impair; !proto.Equal(got, im2) {
		t.Errorf("impairment = %v, want %v", got, im2)
	}

	// Unset, or all zero (zero durations too), clears: stored as no impairment.
	for _, clear := range []*labv1.Impairment{nil, {}, {Delay: ms(0), Jitter: &durationpb.Duration{}}} {
		if _, err := e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/r1", Interface: "eth1", Impair: im}); err != nil {
			t.Fatal(err)
		}
		resp, err := e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/r1", Interface: "eth1", Impair: clear})
		if err != nil {
			t.Fatalf("SetImpairment %v: %v", clear, err)
		}
		if resp.Host.Interfaces[1].Impair != nil {
			t.Errorf("SetImpairment %v left %v", clear, resp.Host.Interfaces[1].Impair)
		}
	}
	// Applying a topology whose impairment is empty stores none either.
	e.apply(t, withImpair(demo(), 1, 0, &labv1.Impairment{Delay: ms(0)}))
	if got := e.host(t, "labs/demo/hosts/h1").Interfaces[0].Impair; got != nil {
		t.Errorf("empty impairment stored as %v", got)
	}

	before = e.snapshot()
	_, err = e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "h1", Interface: "eth0", Impair: im})
	wantField(t, err, "host")
	_, err = e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/h1", Impair: im})
	wantField(t, err, "interface")
	_, err = e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/h9", Interface: "eth0", Impair: im})
	wantCode(t, err, codes.NotFound)
	_, err = e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/r1", Interface: "eth2", Impair: im})
	if st := wantCode(t, err, codes.NotFound); st.Message() != `interface "eth2" not found on host r1 (it has eth0, eth1)` {
		t.Errorf("message %q", st.Message())
	}
	e.unchanged(t, before)
}

// TestImpairmentOnRunningHost changes a running host's impairments: the
// host is not restarted, and what the impairments do shows in ping and in
// the counters.
func TestImpairmentOnRunningHost(t *testing.T) {
	e := runningDemo(t)
	ctx := context.Background()
	const name = "labs/demo/hosts/h1"
	running, _ := e.rt.Host(name)
	set := func(im *labv1.Impairment) {
		t.Helper()
		if _, err := e.lab.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: name, Interface: "eth0", Impair: im}); err != nil {
			t.Fatalf("SetImpairment: %v", err)
		}
		// The runtime applies it when it sees the store change.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			h, ok := e.rt.Host(name)
			if !ok || h != running {
				t.Fatalf("host %s was restarted by an impairment change", name)
			}
			if proto.Equal(h.Impairment("eth0"), im) || (im == nil && h.Impairment("eth0") == nil) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("impairment %v not applied after 5s (applied: %v)", im, h.Impairment("eth0"))
			}
		}
	}
	counters := func() *labv1.InterfaceCounters {
		t.Helper()
		r, err := e.live.GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: name})
		if err != nil {
			t.Fatalf("GetHostStatus: %v", err)
		}
		return r.Status.Interfaces[0].Counters
	}
	replies := func(msgs []*labv1.PingResponse) (n int, rtts []time.Duration) {
		for _, m := range msgs {
			if r := m.GetReply(); r != nil {
				n++
				rtts = append(rtts, r.Rtt.AsDuration())
			}
		}
		return n, rtts
	}

	// All lost: every probe times out, and the drops are counted.
	set(&labv1.Impairment{LossPercent: 100})
	msgs, err := ping(t, e, &labv1.PingRequest{Host: name, Destination: "h2", Count: 3, Interval: ms(20), Timeout: ms(200)})
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if n, _ := replies(msgs); n != 0 {
		t.Errorf("%d replies through 100%% loss", n)
	}
	if c := counters(); c.ImpairDropped < 3 || c.TxPackets < 3 {
		t.Errorf("counters %v: want 3 packets sent and dropped", c)
	}

	// A delay shows in the round-trip time.
	set(&labv1.Impairment{Delay: ms(50)})
	msgs, err = ping(t, e, &labv1.PingRequest{Host: name, Destination: "h2", Count: 2, Interval: ms(20), Timeout: ms(2000)})
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	n, rtts := replies(msgs)
	if n != 2 {
		t.Fatalf("%d replies, want 2: %v", n, msgs)
	}
	for _, rtt := range rtts {
		if rtt < 50*time.Millisecond {
			t.Errorf("rtt %v through a 50ms delay", rtt)
		}
	}
	if c := counters(); c.ImpairDelayed < 2 || c.ImpairDropped < 3 {
		t.Errorf("counters %v: want 2 delayed, and the drops still counted", c)
	}

	// The same through Apply: an impairment in the file, then none.
	e.apply(t, withImpair(demo(), 1, 0, &labv1.Impairment{DuplicatePercent: 100}))
	set(&labv1.Impairment{DuplicatePercent: 100})
	msgs, err = ping(t, e, &labv1.PingRequest{Host: name, Destination: "h2", Count: 1, Interval: ms(20), Timeout: ms(500)})
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if n, _ := replies(msgs); n != 1 {
		t.Errorf("%d replies, want 1 (duplicates are not reported twice): %v", n, msgs)
	}
	if c := counters(); c.ImpairDuplicated < 1 {
		t.Errorf("counters %v: want a duplicate", c)
	}
	e.apply(t, demo())
	set(nil)
	msgs, err = ping(t, e, &labv1.PingRequest{Host: name, Destination: "h2", Count: 2, Interval: ms(20)})
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if n, _ := replies(msgs); n != 2 {
		t.Errorf("%d replies after clearing, want 2", n)
	}
	if h, _ := e.rt.Host(name); h != running {
		t.Error("host restarted")
	}
	// Other hosts were not restarted either, and a real change still
	// restarts: the key without impairments still covers the rest.
	topo := demo()
	topo.Hosts[1].Interfaces[0].Ipv4 = "10.0.1.77"
	e.apply(t, topo)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if h, ok := e.rt.Host(name); ok && h != running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an address change did not restart the host")
		}
	}
	if diff := cmp.Diff(&labv1.Interface{Name: "eth0", Network: "lan1", Ipv4: "10.0.1.77/24", Ipv6: "fd00:0:0:1::2/64"},
		e.host(t, name).Interfaces[0], protocmp.Transform()); diff != "" {
		t.Errorf("interface (-want +got):\n%s", diff)
	}
}
