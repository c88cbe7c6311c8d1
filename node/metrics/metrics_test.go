package metrics

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/overlay"
	"github.com/labnet-dev/labnet/stack"
)

// serve serves reg on a loopback port until the test ends and returns the
// base URL.
func serve(t *testing.T, reg *Registry) string {
	t.Helper()
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, reg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return "http://" + l.Addr().String()
}

// scrape GETs /metrics and returns its samples, name{labels} -> value.
func scrape(t *testing.T, base string) map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		out[line[:i]] = line[i+1:]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// only keeps the samples whose names start with prefix.
func only(samples map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range samples {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func TestScrape(t *testing.T) {
	oc := overlay.Counters{
		PacketsSent: 10, BytesSent: 1000, SendCalls: 3,
		PacketsReceived: 20, BytesReceived: 2000, ReceiveCalls: 4,
		DroppedMalformed: 1, DroppedBadTag: 2, DroppedUnknownSender: 5, Undelivered: 6,
		DroppedReplay: 13, DroppedTooOld: 14, DroppedNotOnNetwork: 15, DroppedSpoofedSource: 16,
		TxQueueFull: 12, TxNoRoute: 13, TxTooBig: 14, TxDown: 15, TxSendFailed: 16,
	}
	ifaces := []Interface{
		{
			Lab: "demo", Host: "h1", Name: "eth0",
			Counters: stack.Counters{RxPackets: 7, RxBytes: 700, TxPackets: 8, TxBytes: 800, RxDropped: 1, TxDropped: 2},
			Impair:   fabric.ImpairCounters{Dropped: 3, Duplicated: 4, Corrupted: 5, Delayed: 6, Reordered: 9, QueueDropped: 11},
		},
		{
			// Of its 20 transmit drops, the overlay refused 1+2+3+4.
			Lab: "demo", Host: "h2", Name: "eth0",
			Counters: stack.Counters{TxPackets: 5, TxBytes: 500, TxDropped: 20},
			Impair:   fabric.ImpairCounters{OverlayQueueFull: 1, NoRouteToNode: 2, OverlayTooBig: 3, OverlayDown: 4},
		},
		{Lab: "demo", Host: "r1", Name: "eth1", Counters: stack.Counters{TxPackets: 1, TxBytes: 84}},
	}
	reg := New(Sources{
		Overlay: func() overlay.Counters { return oc },
		OverlayPeers: func() map[string]overlay.PeerCounters {
			return map[string]overlay.PeerCounters{"alice-laptop": {Received: 20, Replayed: 21, TooOld: 22, BadTag: 23, NotOnNetwork: 24, SpoofedSource: 25}}
		},
		Members: func() map[string]int { return map[string]int{"alive": 2, "dead": 1} },
		Interfaces: func(yield func(Interface) bool) {
			for _, in := range ifaces {
				if !yield(in) {
					return
				}
			}
		},
	})
	got := scrape(t, serve(t, reg))

	want := map[string]string{
		`labnet_overlay_packets_total{direction="tx"}`:                                                                 "10",
		`labnet_overlay_packets_total{direction="rx"}`:                                                                 "20",
		`labnet_overlay_bytes_total{direction="tx"}`:                                                                   "1000",
		`labnet_overlay_bytes_total{direction="rx"}`:                                                                   "2000",
		`labnet_overlay_syscalls_total{direction="tx"}`:                                                                "3",
		`labnet_overlay_syscalls_total{direction="rx"}`:                                                                "4",
		`labnet_overlay_drops_total{reason="malformed"}`:                                                               "1",
		`labnet_overlay_drops_total{reason="bad_tag"}`:                                                                 "2",
		`labnet_overlay_node_packets_total{node="alice-laptop"}`:                                                       "20",
		`labnet_overlay_node_drops_total{node="alice-laptop",reason="replay"}`:                                         "21",
		`labnet_overlay_node_drops_total{node="alice-laptop",reason="too_old"}`:                                        "22",
		`labnet_overlay_node_drops_total{node="alice-laptop",reason="bad_tag"}`:                                        "23",
		`labnet_overlay_node_drops_total{node="alice-laptop",reason="not_on_network"}`:                                 "24",
		`labnet_overlay_node_drops_total{node="alice-laptop",reason="spoofed_source"}`:                                 "25",
		`labnet_overlay_drops_total{reason="replay"}`:                                                                  "13",
		`labnet_overlay_drops_total{reason="too_old"}`:                                                                 "14",
		`labnet_overlay_drops_total{reason="not_on_network"}`:                                                          "15",
		`labnet_overlay_drops_total{reason="spoofed_source"}`:                                                          "16",
		`labnet_overlay_drops_total{reason="unknown_sender"}`:                                                          "5",
		`labnet_overlay_drops_total{reason="no_owner"}`:                                                                "6",
		`labnet_overlay_tx_drops_total{reason="queue_full"}`:                                                           "12",
		`labnet_overlay_tx_drops_total{reason="no_route"}`:                                                             "13",
		`labnet_overlay_tx_drops_total{reason="too_big"}`:                                                              "14",
		`labnet_overlay_tx_drops_total{reason="down"}`:                                                                 "15",
		`labnet_overlay_tx_drops_total{reason="send_failed"}`:                                                          "16",
		`labnet_cluster_members{state="alive"}`:                                                                        "2",
		`labnet_cluster_members{state="suspect"}`:                                                                      "0",
		`labnet_cluster_members{state="dead"}`:                                                                         "1",
		`labnet_cluster_members{state="left"}`:                                                                         "0",
		`labnet_interface_packets_total{direction="rx",host="h1",iface="eth0",lab="demo"}`:                             "7",
		`labnet_interface_packets_total{direction="tx",host="h1",iface="eth0",lab="demo"}`:                             "8",
		`labnet_interface_bytes_total{direction="rx",host="h1",iface="eth0",lab="demo"}`:                               "700",
		`labnet_interface_bytes_total{direction="tx",host="h1",iface="eth0",lab="demo"}`:                               "800",
		`labnet_interface_dropped_total{direction="rx",host="h1",iface="eth0",lab="demo",reason="queue_full"}`:         "1",
		`labnet_interface_dropped_total{direction="tx",host="h1",iface="eth0",lab="demo",reason="link"}`:               "2",
		`labnet_interface_dropped_total{direction="tx",host="h1",iface="eth0",lab="demo",reason="impair_loss"}`:        "3",
		`labnet_interface_dropped_total{direction="tx",host="h1",iface="eth0",lab="demo",reason="impair_limit"}`:       "11",
		`labnet_interface_dropped_total{direction="tx",host="h1",iface="eth0",lab="demo",reason="overlay_queue_full"}`: "0",
		`labnet_interface_dropped_total{direction="tx",host="h1",iface="eth0",lab="demo",reason="no_route_to_node"}`:   "0",
		`labnet_interface_dropped_total{direction="tx",host="h1",iface="eth0",lab="demo",reason="overlay_too_big"}`:    "0",
		`labnet_interface_dropped_total{direction="tx",host="h1",iface="eth0",lab="demo",reason="overlay_down"}`:       "0",
		`labnet_interface_impaired_total{action="duplicated",host="h1",iface="eth0",lab="demo"}`:                       "4",
		`labnet_interface_impaired_total{action="corrupted",host="h1",iface="eth0",lab="demo"}`:                        "5",
		`labnet_interface_impaired_total{action="delayed",host="h1",iface="eth0",lab="demo"}`:                          "6",
		`labnet_interface_impaired_total{action="reordered",host="h1",iface="eth0",lab="demo"}`:                        "9",
		`labnet_interface_packets_total{direction="rx",host="h2",iface="eth0",lab="demo"}`:                             "0",
		`labnet_interface_packets_total{direction="tx",host="h2",iface="eth0",lab="demo"}`:                             "5",
		`labnet_interface_bytes_total{direction="rx",host="h2",iface="eth0",lab="demo"}`:                               "0",
		`labnet_interface_bytes_total{direction="tx",host="h2",iface="eth0",lab="demo"}`:                               "500",
		`labnet_interface_dropped_total{direction="rx",host="h2",iface="eth0",lab="demo",reason="queue_full"}`:         "0",
		`labnet_interface_dropped_total{direction="tx",host="h2",iface="eth0",lab="demo",reason="link"}`:               "10",
		`labnet_interface_dropped_total{direction="tx",host="h2",iface="eth0",lab="demo",reason="impair_loss"}`:        "0",
		`labnet_interface_dropped_total{direction="tx",host="h2",iface="eth0",lab="demo",reason="impair_limit"}`:       "0",
		`labnet_interface_dropped_total{direction="tx",host="h2",iface="eth0",lab="demo",reason="overlay_queue_full"}`: "1",
		`labnet_interface_dropped_total{direction="tx",host="h2",iface="eth0",lab="demo",reason="no_route_to_node"}`:   "2",
		`labnet_interface_dropped_total{direction="tx",host="h2",iface="eth0",lab="demo",reason="overlay_too_big"}`:    "3",
		`labnet_interface_dropped_total{direction="tx",host="h2",iface="eth0",lab="demo",reason="overlay_down"}`:       "4",
		`labnet_interface_impaired_total{action="duplicated",host="h2",iface="eth0",lab="demo"}`:                       "0",
		`labnet_interface_impaired_total{action="corrupted",host="h2",iface="eth0",lab="demo"}`:                        "0",
		`labnet_interface_impaired_total{action="delayed",host="h2",iface="eth0",lab="demo"}`:                          "0",
		`labnet_interface_impaired_total{action="reordered",host="h2",iface="eth0",lab="demo"}`:                        "0",
		`labnet_interface_packets_total{direction="rx",host="r1",iface="eth1",lab="demo"}`:                             "0",
		`labnet_interface_packets_total{direction="tx",host="r1",iface="eth1",lab="demo"}`:                             "1",
		`labnet_interface_bytes_total{direction="rx",host="r1",iface="eth1",lab="demo"}`:                               "0",
		`labnet_interface_bytes_total{direction="tx",host="r1",iface="eth1",lab="demo"}`:                               "84",
		`labnet_interface_dropped_total{direction="rx",host="r1",iface="eth1",lab="demo",reason="queue_full"}`:         "0",
		`labnet_interface_dropped_total{direction="tx",host="r1",iface="eth1",lab="demo",reason="link"}`:               "0",
		`labnet_interface_dropped_total{direction="tx",host="r1",iface="eth1",lab="demo",reason="impair_loss"}`:        "0",
		`labnet_interface_dropped_total{direction="tx",host="r1",iface="eth1",lab="demo",reason="impair_limit"}`:       "0",
		`labnet_interface_dropped_total{direction="tx",host="r1",iface="eth1",lab="demo",reason="overlay_queue_full"}`: "0",
		`labnet_interface_dropped_total{direction="tx",host="r1",iface="eth1",lab="demo",reason="no_route_to_node"}`:   "0",
		`labnet_interface_dropped_total{direction="tx",host="r1",iface="eth1",lab="demo",reason="overlay_too_big"}`:    "0",
		`labnet_interface_dropped_total{direction="tx",host="r1",iface="eth1",lab="demo",reason="overlay_down"}`:       "0",
		`labnet_interface_impaired_total{action="duplicated",host="r1",iface="eth1",lab="demo"}`:                       "0",
		`labnet_interface_impaired_total{action="corrupted",host="r1",iface="eth1",lab="demo"}`:                        "0",
		`labnet_interface_impaired_total{action="delayed",host="r1",iface="eth1",lab="demo"}`:                          "0",
		`labnet_interface_impaired_total{action="reordered",host="r1",iface="eth1",lab="demo"}`:                        "0",
	}
	if diff := cmp.Diff(want, only(got, "labnet_")); diff != "" {
		t.Errorf("labnet_ samples (-want +got):\n%s", diff)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no %s sample", name)
		}
	}

	// Counters are read on every scrape, not cached.
	oc.PacketsSent = 11
	if got := scrape(t, serve(t, reg))[`labnet_overlay_packets_total{direction="tx"}`]; got != "11" {
		t.Errorf("tx packets after a change = %s, want 11", got)
	}
}

func TestMemberStateOutsideTheFour(t *testing.T) {
	reg := New(Sources{Members: func() map[string]int { return map[string]int{"State(9)": 1} }})
	got := only(scrape(t, serve(t, reg)), "labnet_")
	want := map[string]string{
		`labnet_cluster_members{state="alive"}`:    "0",
		`labnet_cluster_members{state="suspect"}`:  "0",
		`labnet_cluster_members{state="dead"}`:     "0",
		`labnet_cluster_members{state="left"}`:     "0",
		`labnet_cluster_members{state="State(9)"}`: "1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNoSources(t *testing.T) {
	got := scrape(t, serve(t, New(Sources{})))
	if l := only(got, "labnet_"); len(l) != 0 {
		t.Errorf("labnet_ samples with no sources: %v", l)
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no go_goroutines sample")
	}
}

type discardLink struct{}

func (discardLink) Send(netip.Addr, []byte) error { return nil }

// fakeHost is a running host: a real stack and made-up impairment counters.
type fakeHost struct {
	st     *stack.Stack
	impair map[string]fabric.ImpairCounters
}

func (h fakeHost) Stack() *stack.Stack                               { return h.st }
func (h fakeHost) ImpairCounters(iface string) fabric.ImpairCounters { return h.impair[iface] }

func TestHostInterfaces(t *testing.T) {
	st := stack.New(stack.Config{Name: "labs/demo/hosts/r1", Clock: stack.SystemClock{}})
	for i, name := range []string{"eth0", "eth1"} {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 1}), 24)
		nic, err := st.AddInterface(name, 1500, discardLink{}, p)
		if err != nil {
			t.Fatal(err)
		}
		for range i + 1 {
			nic.CountRxDrop()
		}
	}
	other := stack.New(stack.Config{Name: "odd", Clock: stack.SystemClock{}})
	if _, err := other.AddInterface("lo0", 1500, discardLink{}); err != nil {
		t.Fatal(err)
	}
	hosts := []struct {
		name string
		h    Host
	}{
		{"labs/demo/hosts/r1", fakeHost{st, map[string]fabric.ImpairCounters{"eth1": {Dropped: 4}}}},
		{"odd", fakeHost{st: other}},
	}
	seq := HostInterfaces(func(yield func(string, Host) bool) {
		for _, h := range hosts {
			if !yield(h.name, h.h) {
				return
			}
		}
	})
	var got []Interface
	for in := range seq {
		got = append(got, in)
	}
	want := []Interface{
		{Lab: "demo", Host: "r1", Name: "eth0", Counters: stack.Counters{RxDropped: 1}},
		{Lab: "demo", Host: "r1", Name: "eth1", Counters: stack.Counters{RxDropped: 2}, Impair: fabric.ImpairCounters{Dropped: 4}},
		{Lab: "", Host: "odd", Name: "lo0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// Stopping early stops.
	n := 0
	for range seq {
		n++
		break
	}
	if n != 1 {
		t.Errorf("break after the first: %d interfaces", n)
	}
}

func TestListenErrors(t *testing.T) {
	taken, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:notaport", "192.0.2.1:0", taken.Addr().String()} {
		t.Run(addr, func(t *testing.T) {
			l, err := Listen(addr)
			if err == nil {
				l.Close()
				t.Fatalf("Listen(%q): no error", addr)
			}
			var op *net.OpError
			var ae *net.AddrError
			if !errors.As(err, &op) && !errors.As(err, &ae) {
				t.Errorf("Listen(%q) = %v (%T), want a *net.OpError or *net.AddrError", addr, err, err)
			}
		})
	}
}

func TestServeReturnsWhenListenerFails(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), l, New(Sources{})) }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve on a closed listener = %v, want the accept error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve on a closed listener did not return")
	}
}

func TestShutdownWithScrapeInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	reg := New(Sources{Members: func() map[string]int {
		close(entered)
		<-release
		return map[string]int{"alive": 1}
	}})
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, reg) }()
	resp := make(chan string, 1)
	go func() {
		r, err := http.Get("http://" + l.Addr().String() + "/metrics")
		if err != nil {
			resp <- err.Error()
			return
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		resp <- string(b)
	}()
	<-entered
	cancel()
	time.Sleep(50 * time.Millisecond) // Shutdown is waiting for the scrape
	close(release)
	if body := <-resp; !strings.Contains(body, `labnet_cluster_members{state="alive"} 1`) {
		t.Errorf("scrape in flight during shutdown got:\n%s", body)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := http.Get("http://" + l.Addr().String() + "/metrics"); err == nil {
		t.Error("still serving after shutdown")
	}
}

// TestLinkDrops: the interface's drops that the overlay did not refuse are
// the network's, never below 0 when a scrape catches a refusal the
// interface has not counted yet.
func TestLinkDrops(t *testing.T) {
	ic := fabric.ImpairCounters{OverlayQueueFull: 2, OverlayDown: 1}
	if got := linkDrops(5, ic); got != 2 {
		t.Errorf("linkDrops(5) = %d, want 2", got)
	}
	if got := linkDrops(2, ic); got != 0 {
		t.Errorf("linkDrops(2) = %d, want 0", got)
	}
}
