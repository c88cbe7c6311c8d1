package probe_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/labnet-dev/labnet/node/probe"
)

// addrs lets cmp compare addresses.
var addrs = cmpopts.EquateComparable(netip.Addr{})

func pings(h probe.Host, o probe.PingOptions) func(context.Context) func(func(probe.PingEvent, error) bool) {
	return func(ctx context.Context) func(func(probe.PingEvent, error) bool) { return probe.Ping(ctx, h, o) }
}

func TestPingReplies(t *testing.T) {
	l := newLab(t)
	a := l.host(t, "a")
	for _, tc := range []struct {
		dst, src   netip.Addr
		packetSize int
	}{
		{addrB, addrA, 56 + 8 + 20},
		{addrB6, netip.MustParseAddr("fd00:1::10"), 56 + 8 + 40},
	} {
		evs, err := collect(t, pings(a, probe.PingOptions{Destination: tc.dst, Count: 3, Interval: 10 * time.Millisecond}))
		if err != nil {
			t.Fatalf("ping %v: %v", tc.dst, err)
		}
		if len(evs) != 4 {
			t.Fatalf("ping %v: events %v, want start and 3 replies", tc.dst, evs)
		}
		want := probe.PingStart{Source: tc.src, Destination: tc.dst, Size: 56, PacketSize: tc.packetSize}
		if diff := cmp.Diff(probe.PingEvent(want), evs[0], addrs); diff != "" {
			t.Errorf("start (-want +got):\n%s", diff)
		}
		for i, ev := range evs[1:] {
			r, ok := ev.(probe.PingReply)
			// Two routers: the reply arrives with 64 - 2.
			if !ok || r.Seq != uint16(i+1) || r.From != tc.dst || r.TTL != 62 || r.Bytes != 64 || r.RTT <= 0 {
				t.Errorf("event %d = %+v, want reply %d from %v, ttl 62, 64 bytes, positive rtt", i+1, ev, i+1, tc.dst)
			}
		}
	}
}

func TestPingTimeoutsAndErrors(t *testing.T) {
	l := newLab(t)
	a := l.host(t, "a")
	// c has no route back: silence.
	evs, err := collect(t, pings(a, probe.PingOptions{Destination: addrC, Count: 2, Interval: 10 * time.Millisecond, Timeout: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]probe.PingEvent{probe.PingTimeout{Seq: 1}, probe.PingTimeout{Seq: 2}}, evs[1:], addrs); diff != "" {
		t.Errorf("events after start (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		opts probe.PingOptions
		want probe.PingError
	}{
		{"ttl exceeded at r1", probe.PingOptions{Destination: addrB, TTL: 1},
			probe.PingError{Seq: 1, From: addrR1, Message: "Time to live exceeded", ICMPType: 11}},
		{"no host at r2", probe.PingOptions{Destination: netip.MustParseAddr("10.0.3.99")},
			probe.PingError{Seq: 1, From: addrR2, Message: "Destination Host Unreachable", ICMPType: 3, ICMPCode: 1}},
		{"nobody on a's own LAN", probe.PingOptions{Destination: netip.MustParseAddr("10.0.1.99")},
			probe.PingError{Seq: 1, Message: "Destination Host Unreachable"}},
	} {
		tc.opts.Count = 1
		evs, err := collect(t, pings(a, tc.opts))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(evs) != 2 {
			t.Fatalf("%s: events %v, want start and an error", tc.name, evs)
		}
		if diff := cmp.Diff(probe.PingEvent(tc.want), evs[1], addrs); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestPingFailsToStart(t *testing.T) {
	l := newLab(t)
	a, c := l.host(t, "a"), l.host(t, "c")
	for _, tc := range []struct {
		name   string
		h      probe.Host
		opts   probe.PingOptions
		option string // the OptionError's, or "" for ErrNoRoute
	}{
		{"negative count", a, probe.PingOptions{Destination: addrB, Count: -1}, "count"},
		{"short interval", a, probe.PingOptions{Destination: addrB, Interval: time.Millisecond}, "interval"},
		{"ttl", a, probe.PingOptions{Destination: addrB, TTL: 256}, "ttl"},
		{"size", a, probe.PingOptions{Destination: addrB, Size: 65001}, "size"},
		{"no destination", a, probe.PingOptions{}, "destination"},
		{"no route", c, probe.PingOptions{Destination: addrA}, ""},
	} {
		evs, err := collect(t, pings(tc.h, tc.opts))
		if len(evs) != 0 {
			t.Errorf("%s: events %v before the error", tc.name, evs)
		}
		var oe *probe.OptionError
		switch {
		case tc.option == "" && !errors.Is(err, probe.ErrNoRoute):
			t.Errorf("%s: error %v, want ErrNoRoute", tc.name, err)
		case tc.option != "" && (!errors.As(err, &oe) || oe.Option != tc.option):
			t.Errorf("%s: error %v, want an OptionError of %s", tc.name, err, tc.option)
		}
	}
}

// TestPingStops: an endless ping ends when the caller breaks out of the
// loop, and when its context ends, without an error either way.
func TestPingStops(t *testing.T) {
	l := newLab(t)
	a := l.host(t, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	replies := 0
	for ev, err := range probe.Ping(ctx, a, probe.PingOptions{Destination: addrB, Interval: 10 * time.Millisecond}) {
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ev.(probe.PingReply); ok {
			if replies++; replies == 2 {
				break
			}
		}
	}
	if ctx.Err() != nil {
		t.Fatal("two replies did not come in 20s")
	}
	short, cancelShort := context.WithCancel(ctx)
	defer cancelShort()
	n := 0
	for ev, err := range probe.Ping(short, a, probe.PingOptions{Destination: addrB, Interval: 10 * time.Millisecond}) {
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ev.(probe.PingReply); ok {
			n++
			cancelShort()
		}
	}
	if n == 0 || ctx.Err() != nil {
		t.Errorf("%d replies before the cancel ended the ping", n)
	}
}

func trace(h probe.Host, o probe.TraceOptions) func(context.Context) func(func(probe.TraceEvent, error) bool) {
	return func(ctx context.Context) func(func(probe.TraceEvent, error) bool) { return probe.Traceroute(ctx, h, o) }
}

// hops is each hop's answering address (all probes must agree) and
// annotation, and whether it reached the destination.
type hop struct {
	From       netip.Addr
	Annotation string
	Reached    bool
}

func hops(t *testing.T, evs []probe.TraceEvent) []hop {
	t.Helper()
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	if _, ok := evs[0].(probe.TraceStart); !ok {
		t.Fatalf("first event %v, want the start", evs[0])
	}
	var out []hop
	for i, ev := range evs[1:] {
		h, ok := ev.(probe.TraceHop)
		if !ok || h.TTL != i+1 {
			t.Fatalf("event %v, want hop %d", ev, i+1)
		}
		first := h.Probes[0]
		for _, p := range h.Probes {
			if !p.Answered || p.RTT <= 0 || p.From != first.From || p.Annotation != first.Annotation {
				t.Errorf("hop %d probe %+v, want an answer from %v like the first", h.TTL, p, first.From)
			}
		}
		out = append(out, hop{first.From, first.Annotation, h.Reached})
	}
	return out
}

func TestTraceroute(t *testing.T) {
	l := newLab(t)
	a := l.host(t, "a")
	for _, tc := range []struct {
		dst  netip.Addr
		want []hop
	}{
		{addrB, []hop{{From: addrR1}, {From: addrR2}, {From: addrB, Reached: true}}},
		{addrB6, []hop{{From: netip.MustParseAddr("fd00:1::1")}, {From: netip.MustParseAddr("fd00:2::2")}, {From: addrB6, Reached: true}}},
		// r1 has no route: the second hop says so and the trace ends.
		{netip.MustParseAddr("10.9.9.9"), []hop{{From: addrR1}, {From: addrR1, Annotation: "!N"}}},
		// r2 finds nobody with the address on its LAN.
		{netip.MustParseAddr("10.0.3.99"), []hop{{From: addrR1}, {From: addrR2}, {From: addrR2, Annotation: "!H"}}},
	} {
		evs, err := collect(t, trace(a, probe.TraceOptions{Destination: tc.dst, Probes: 2, Timeout: 2 * time.Second}))
		if err != nil {
			t.Fatalf("traceroute %v: %v", tc.dst, err)
		}
		if s := evs[0].(probe.TraceStart); s.Source.Is4() != tc.dst.Is4() || s.Destination != tc.dst || s.MaxHops != 30 {
			t.Errorf("start %+v", s)
		}
		if diff := cmp.Diff(tc.want, hops(t, evs), addrs); diff != "" {
			t.Errorf("traceroute %v hops (-want +got):\n%s", tc.dst, diff)
		}
	}
	_, err := collect(t, trace(a, probe.TraceOptions{Destination: addrB, MaxHops: 256}))
	if oe := (*probe.OptionError)(nil); !errors.As(err, &oe) || oe.Option != "max_hops" {
		t.Errorf("max hops 256: %v, want an OptionError", err)
	}
}

// TestTracerouteSilentHops: hops that do not answer time out, and the
// trace goes on to MaxHops.
func TestTracerouteSilentHops(t *testing.T) {
	l := newLab(t)
	evs, err := collect(t, trace(l.host(t, "a"), probe.TraceOptions{Destination: addrC, MaxHops: 4, Probes: 1, Timeout: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 {
		t.Fatalf("events %v, want start and 4 hops", evs)
	}
	for _, ev := range evs[3:] {
		if h := ev.(probe.TraceHop); h.Reached || h.Probes[0].Answered || h.Probes[0].From.IsValid() {
			t.Errorf("hop %+v, want no answer (c cannot send back)", h)
		}
	}
}

func fetch(h probe.Host, o probe.FetchOptions) func(context.Context) func(func(probe.FetchEvent, error) bool) {
	return func(ctx context.Context) func(func(probe.FetchEvent, error) bool) { return probe.Fetch(ctx, h, o) }
}

// body joins the body pieces after the head.
func body(t *testing.T, evs []probe.FetchEvent) (probe.FetchHead, string) {
	t.Helper()
	if len(evs) == 0 {
		t.Fatal("no head")
	}
	head, ok := evs[0].(probe.FetchHead)
	if !ok {
		t.Fatalf("first event %v, want the head", evs[0])
	}
	var b strings.Builder
	for _, ev := range evs[1:] {
		b.Write(ev.(probe.FetchBody))
	}
	return head, b.String()
}

func TestFetch(t *testing.T) {
	l := newLab(t)
	a := l.host(t, "a")
	evs, err := collect(t, fetch(a, probe.FetchOptions{URL: "http://10.0.3.20/"}))
	if err != nil {
		t.Fatal(err)
	}
	head, page := body(t, evs)
	if head.StatusCode != 200 || head.Proto != "HTTP/1.1" || head.Remote.String() != "10.0.3.20:80" ||
		!strings.HasPrefix(head.Local.String(), "10.0.1.10:") {
		t.Errorf("head %+v", head)
	}
	if !strings.Contains(page, "10.0.1.10") {
		t.Errorf("the page does not name the client:\n%s", page)
	}
	if !strings.Contains(strings.Join(head.Headers, "\n"), "Content-Type: text/plain") {
		t.Errorf("headers %q", head.Headers)
	}

	// A name resolves through Resolve; a body longer than one piece comes
	// whole.
	resolve := func(name string) (netip.Addr, error) {
		if name == "b" {
			return addrB, nil
		}
		return netip.Addr{}, errors.New("unknown host")
	}
	evs, err = collect(t, fetch(a, probe.FetchOptions{URL: "http://b/bytes/200000", Resolve: resolve}))
	if err != nil {
		t.Fatal(err)
	}
	if head, b := body(t, evs); head.StatusCode != 200 || len(b) != 200000 || len(evs) < 3 {
		t.Errorf("status %d, %d bytes in %d pieces; want 200 and 200000 bytes in several", head.StatusCode, len(b), len(evs)-1)
	}

	for _, tc := range []struct {
		name string
		opts probe.FetchOptions
		kind error
	}{
		{"not http", probe.FetchOptions{URL: "ftp://10.0.3.20/"}, nil},
		{"name without a resolver", probe.FetchOptions{URL: "http://b/"}, probe.ErrConnect},
		{"nobody listening", probe.FetchOptions{URL: "http://10.0.3.20:81/"}, probe.ErrConnect},
	} {
		_, err := collect(t, fetch(a, tc.opts))
		var oe *probe.OptionError
		switch {
		case tc.kind == nil && (!errors.As(err, &oe) || oe.Option != "url"):
			t.Errorf("%s: %v, want an OptionError of url", tc.name, err)
		case tc.kind != nil && !errors.Is(err, tc.kind):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.kind)
		}
	}
}

func bench(h probe.Host, o probe.BenchOptions) func(context.Context) func(func(probe.BenchEvent, error) bool) {
	return func(ctx context.Context) func(func(probe.BenchEvent, error) bool) { return probe.Bench(ctx, h, o) }
}

func TestBench(t *testing.T) {
	l := newLab(t)
	a := l.host(t, "a")
	// By size: done when b's discard has every byte.
	evs, err := collect(t, bench(a, probe.BenchOptions{Destination: addrB, Bytes: 1 << 20}))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := evs[len(evs)-1].(probe.BenchResult)
	if !ok || r.Bytes != 1<<20 || r.Elapsed <= 0 || r.Gbps() <= 0 {
		t.Errorf("last event %+v, want a result of 1 MiB", evs[len(evs)-1])
	}
	// By time, with progress reports on the way.
	evs, err = collect(t, bench(a, probe.BenchOptions{Destination: addrB, Duration: 300 * time.Millisecond, Every: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := evs[len(evs)-1].(probe.BenchResult); !ok {
		t.Errorf("last event %+v, want the result", evs[len(evs)-1])
	}
	for _, ev := range evs[:len(evs)-1] {
		if _, ok := ev.(probe.BenchProgress); !ok {
			t.Errorf("event %+v before the result, want progress", ev)
		}
	}
	// Nobody runs discard on r2.
	_, err = collect(t, bench(a, probe.BenchOptions{Destination: addrR2, Bytes: 1}))
	if !errors.Is(err, probe.ErrConnect) {
		t.Errorf("bench to r2: %v, want ErrConnect", err)
	}
}

func TestStatusAndConnections(t *testing.T) {
	l := newLab(t)
	a, r1 := l.host(t, "a"), l.host(t, "r1")
	before := probe.Status(r1)
	if _, err := collect(t, pings(a, probe.PingOptions{Destination: addrB, Count: 2, Interval: 10 * time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	after := probe.Status(r1)
	var names []string
	for _, ifc := range after.Interfaces {
		names = append(names, ifc.Name+" "+ifc.Addresses[0].String())
	}
	if diff := cmp.Diff([]string{"eth0 10.0.1.1/24", "eth1 10.0.2.1/24"}, names, addrs); diff != "" {
		t.Errorf("interfaces (-want +got):\n%s", diff)
	}
	if after.IP.Forwarded < before.IP.Forwarded+4 || after.Interfaces[0].Counters.RxPackets < before.Interfaces[0].Counters.RxPackets+2 {
		t.Errorf("r1 forwarded %d -> %d, eth0 received %d -> %d; want 4 and 2 more",
			before.IP.Forwarded, after.IP.Forwarded, before.Interfaces[0].Counters.RxPackets, after.Interfaces[0].Counters.RxPackets)
	}
	static := 0
	for _, r := range after.Routes {
		if !r.Connected() {
			static++
			if r.Via != addrR2 && r.Via != netip.MustParseAddr("fd00:2::2") || r.Interface != "eth1" {
				t.Errorf("route %+v, want via r2 on eth1", r)
			}
		}
	}
	if static != 2 {
		t.Errorf("%d static routes, want 2: %+v", static, after.Routes)
	}

	// b's services listen; a connection shows on both ends.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ra, _ := l.rt.Host("labs/p/hosts/a")
	c, err := ra.DialTCP(ctx, netip.AddrPortFrom(addrB, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := l.host(t, "b")
	var listening, estab int
	for _, conn := range probe.Connections(b) {
		switch {
		case conn.Protocol == "tcp" && conn.State == "LISTEN" && conn.TCP == nil:
			listening++
		case conn.Protocol == "tcp" && conn.Remote.Addr() == addrA && conn.TCP != nil && conn.TCP.MSS > 0:
			estab++
		}
	}
	if listening != 2 || estab != 1 {
		t.Errorf("b lists %d listeners and %d connections from a, want 2 (http, discard) and 1: %+v", listening, estab, probe.Connections(b))
	}
}
