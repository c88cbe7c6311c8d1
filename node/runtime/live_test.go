package runtime

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/format/capture"
	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/probe"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestLiveHost checks what api's live calls see of a running host: status
// with networks and impairment counters, taps as capture packets, and
// sockets with the methods api relies on.
func TestLiveHost(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt := New(Config{Node: "n1", Store: st, Fabric: fabric.New()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- rt.Run(ctx) }()
	defer func() { cancel(); <-done }()

	lan := &labv1.Network{Name: "labs/l/networks/lan", Ipv4: "10.0.0.0/24"}
	lossy := &labv1.Impairment{LossPercent: 100}
	a := &labv1.Host{Name: "labs/l/hosts/a", Node: "n1", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: "10.0.0.1/24"}}}
	b := &labv1.Host{Name: "labs/l/hosts/b", Node: "n1", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: "10.0.0.2/24", Impair: lossy}}}
	c := &labv1.Host{Name: "labs/l/hosts/c", Node: "n1", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: "10.0.0.3/24"}}}
	put(t, st, lan, a, b, c)
	waitFor(t, "a, b and c running", func() bool { return rt.Count() == 3 })
	ha, _ := rt.Host(a.Name)
	hb, _ := rt.Host(b.Name)
	hc, _ := rt.Host(c.Name)

	var mu sync.Mutex
	var seen []*capture.Packet
	remove, err := ha.Tap("eth0", "a:eth0", nil, func(p *capture.Packet) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ha.Tap("eth9", "a:eth9", nil, func(*capture.Packet) {}); !errors.Is(err, probe.ErrNoInterface) {
		t.Errorf("tap of eth9: %v, want ErrNoInterface", err)
	}

	// a's echo request reaches b; b's reply is lost to its impairment.
	ctx2, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	for ev, err := range probe.Ping(ctx2, ha.Probe(), probe.PingOptions{Destination: netip.MustParseAddr("10.0.0.2"), Count: 1, Timeout: 20 * time.Millisecond}) {
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ev.(probe.PingTimeout); !ok {
			if _, start := ev.(probe.PingStart); !start {
				t.Errorf("event %+v, want a timeout", ev)
			}
		}
	}
	remove()
	mu.Lock()
	if len(seen) != 1 || seen[0].Iface != "a:eth0" || seen[0].Dir != capture.Out || seen[0].Drop != "" {
		t.Errorf("tapped %+v, want a's request going out", seen)
	}
	mu.Unlock()

	sb := hb.Status()
	if len(sb.Interfaces) != 1 {
		t.Fatalf("b's interfaces %+v", sb.Interfaces)
	}
	ifc := sb.Interfaces[0]
	if ifc.Name != "eth0" || ifc.Network != "lan" || ifc.Addresses[0] != netip.MustParsePrefix("10.0.0.2/24") ||
		ifc.Counters.RxPackets != 1 || ifc.Impair.Dropped != 1 || sb.IP.Delivered != 1 {
		t.Errorf("b's status %+v, want one packet in, its reply dropped by the impairment", sb)
	}

	// Sockets: TCP with half-close and linger, UDP with netip addresses.
	l, err := hc.ListenTCP(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := ha.DialTCP(ctx2, netip.MustParseAddrPort("10.0.0.3:7"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, ok := conn.(interface {
		CloseWrite() error
		SetLinger(int) error
	}); !ok {
		t.Errorf("DialTCP gave %T, without CloseWrite and SetLinger", conn)
	}
	short, cancel3 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel3()
	if nc, err := ha.DialTCP(short, netip.MustParseAddrPort("10.0.0.9:7")); err == nil || nc != nil {
		t.Errorf("dialled nobody: %v, %v; want an error and no connection", nc, err)
	}
	pc, err := ha.ListenUDP(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, ok := pc.(interface {
		WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
		ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
	}); !ok {
		t.Errorf("ListenUDP gave %T, without the netip methods", pc)
	}
	var conns []string
	for _, c := range ha.Connections() {
		conn := c.Protocol + " " + c.State
		if c.Remote.IsValid() {
			conn += " " + c.Remote.String()
		}
		conns = append(conns, conn)
	}
	if len(conns) != 2 || conns[0] != "tcp ESTABLISHED 10.0.0.3:7" || conns[1] != "udp UNCONN" {
		t.Errorf("a's connections %q, want one to c and a UDP socket", conns)
	}
}
