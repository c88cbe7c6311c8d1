//go:build linux

package tun_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/labnet-dev/labnet/node/tun"
	"github.com/labnet-dev/labnet/node/tun/nstest"
	"github.com/labnet-dev/labnet/stack"
)

// Every test that touches the kernel runs in a namespace of its own (package
// nstest): the kernel side of the TUN device is 10.99.0.1 / fd00:99::1, our
// stack is 10.99.0.2 / fd00:99::2.
const devName = "labtun0"

var (
	ourV4  = netip.MustParsePrefix("10.99.0.2/24")
	ourV6  = netip.MustParsePrefix("fd00:99::2/64")
	kernV4 = netip.MustParseAddr("10.99.0.1")
	kernV6 = netip.MustParseAddr("fd00:99::1")
)

const waitFor = 5 * time.Second

// attached creates a namespace, a TUN device in it attached to a new stack
// configured by cfg (with the system clock), and configures the kernel's
// side. The attachment is stopped, and the namespace deleted, when the test
// ends.
func attached(t *testing.T, cfg stack.Config) (*nstest.NS, *stack.Stack, *stack.NIC) {
	t.Helper()
	cfg.Clock = stack.SystemClock{}
	s := stack.New(cfg)
	ns, nic := attach(t, s)
	return ns, s, nic
}

// attach is attached for a stack the caller has built: s must be complete,
// since packets start arriving at once.
func attach(t *testing.T, s *stack.Stack) (*nstest.NS, *stack.NIC) {
	t.Helper()
	ns := nstest.New(t)
	d, err := tun.OpenInNamespace(ns.Path(), devName)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != devName {
		t.Errorf("Name() = %q, want %q", d.Name(), devName)
	}
	nic, stop, err := tun.Attach(d, s, "tun0", 1500, ourV4, ourV6)
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	// Cleanups run last-registered first: stop before the namespace goes.
	t.Cleanup(func() {
		if err := stopWithin(t, stop); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	ns.Run("ip", "link", "set", "lo", "up")
	ns.Run("ip", "link", "set", devName, "up", "mtu", "1500")
	ns.Run("ip", "addr", "add", "10.99.0.1/24", "dev", devName)
	ns.Run("ip", "-6", "addr", "add", "fd00:99::1/64", "dev", devName, "nodad")
	return ns, nic
}

// stopWithin calls stop and fails the test if it does not return in time:
// a reader goroutine that Close did not wake.
func stopWithin(t *testing.T, stop func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	select {
	case err := <-errc:
		return err
	case <-time.After(waitFor):
		t.Fatalf("stop did not return within %v: the reader goroutine is stuck", waitFor)
		return nil
	}
}

func TestKernelPingsStack(t *testing.T) {
	nstest.RequireCommand(t, "ping", "iputils-ping")
	ns, s, nic := attached(t, stack.Config{Name: "host"})
	for _, dst := range []string{"10.99.0.2", "fd00:99::2"} {
		t.Run(dst, func(t *testing.T) {
			out, err := ns.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", dst)
			if err != nil {
				t.Fatalf("ping %s from the kernel: %v\n%s", dst, err, out)
			}
			if !strings.Contains(string(out), " 0% packet loss") {
				t.Errorf("ping %s: want no loss:\n%s", dst, out)
			}
		})
	}
	c := nic.Counters()
	if c.RxPackets < 6 || c.TxPackets < 6 {
		t.Errorf("counters %+v: want at least 6 packets each way", c)
	}
	t.Logf("stack stats %+v, nic counters %+v", s.Stats(), c)
}

func TestStackPingsKernel(t *testing.T) {
	_, s, _ := attached(t, stack.Config{Name: "host"})
	for _, dst := range []netip.Addr{kernV4, kernV6} {
		t.Run(dst.String(), func(t *testing.T) {
			e, err := s.OpenEcho(dst.Is6())
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			for seq := uint16(1); seq <= 3; seq++ {
				src, err := e.Send(dst, seq, 0, []byte("labnet tun test"))
				if err != nil {
					t.Fatalf("echo %d to %v: %v", seq, dst, err)
				}
				if want := map[bool]netip.Addr{false: ourV4.Addr(), true: ourV6.Addr()}[dst.Is6()]; src != want {
					t.Errorf("source = %v, want %v", src, want)
				}
				ev := awaitEcho(t, e, seq)
				if !ev.Reply || ev.From != dst {
					t.Fatalf("echo %d: got %+v, want a reply from %v", seq, ev, dst)
				}
			}
		})
	}
}

// awaitEcho returns the event for seq, skipping stale ones.
func awaitEcho(t *testing.T, e *stack.EchoEndpoint, seq uint16) stack.EchoEvent {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case ev, ok := <-e.Events():
			if !ok {
				t.Fatal("events closed")
			}
			if ev.Seq == seq {
				return ev
			}
		case <-timeout:
			t.Fatalf("no answer to echo %d within %v", seq, waitFor)
		}
	}
}

// pipe is an in-memory point-to-point link to another stack's interface,
// which owns the addresses owner and owner6.
type pipe struct {
	owner, owner6 netip.Addr
	peer          *stack.Stack
	nic           *stack.NIC // peer's interface
}

func (p *pipe) Send(nextHop netip.Addr, pkt []byte) error {
	if nextHop != p.owner && nextHop != p.owner6 {
		return stack.ErrHostUnreachable
	}
	// Deliver on another goroutine: the receiving stack answers through
	// its own link, and the chain must not re-enter the sender.
	go p.peer.Deliver(p.nic, pkt)
	return nil
}

// TestStackRoutes makes our stack a router between the kernel and a second
// stack, b (10.99.1.5, fd00:98::5), behind it: the kernel reaches b through
// us, and a TTL of 1 gets a time exceeded from us, as traceroute sees.
func TestStackRoutes(t *testing.T) {
	nstest.RequireCommand(t, "ping", "iputils-ping")
	r := stack.New(stack.Config{Name: "router", Clock: stack.SystemClock{}, Forwarding: true})
	b := stack.New(stack.Config{Name: "b", Clock: stack.SystemClock{}})
	toB := &pipe{owner: netip.MustParseAddr("10.99.1.5"), owner6: netip.MustParseAddr("fd00:98::5"), peer: b}
	toR := &pipe{owner: netip.MustParseAddr("10.99.1.1"), owner6: netip.MustParseAddr("fd00:98::1"), peer: r}
	var err error
	if toR.nic, err = r.AddInterface("eth1", 1500, toB, netip.MustParsePrefix("10.99.1.1/24"), netip.MustParsePrefix("fd00:98::1/64")); err != nil {
		t.Fatal(err)
	}
	if toB.nic, err = b.AddInterface("eth0", 1500, toR, netip.MustParsePrefix("10.99.1.5/24"), netip.MustParsePrefix("fd00:98::5/64")); err != nil {
		t.Fatal(err)
	}
	for _, rt := range []struct{ dst, via string }{{"0.0.0.0/0", "10.99.1.1"}, {"::/0", "fd00:98::1"}} {
		if err := b.AddRoute(netip.MustParsePrefix(rt.dst), netip.MustParseAddr(rt.via)); err != nil {
			t.Fatal(err)
		}
	}
	ns, _ := attach(t, r)
	ns.Run("ip", "route", "add", "10.99.1.0/24", "via", "10.99.0.2", "dev", devName)
	ns.Run("ip", "-6", "route", "add", "fd00:98::/64", "via", "fd00:99::2", "dev", devName)

	for _, tc := range []struct {
		dst, exceeded string
	}{
		{"10.99.1.5", "From 10.99.0.2 icmp_seq=1 Time to live exceeded"},
		{"fd00:98::5", "From fd00:99::2 icmp_seq=1 Time exceeded: Hop limit"},
	} {
		t.Run(tc.dst, func(t *testing.T) {
			out, err := ns.Exec("ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", tc.dst)
			if err != nil {
				t.Fatalf("ping %s through our stack: %v\n%s", tc.dst, err, out)
			}
			out, err = ns.Exec("ping", "-n", "-c", "1", "-W", "2", "-t", "1", tc.dst)
			if err == nil || !strings.Contains(string(out), tc.exceeded) {
				t.Fatalf("ping -t 1 %s: err %v, want a failure with %q:\n%s", tc.dst, err, tc.exceeded, out)
			}
		})
	}
	st := r.Stats()
	if st.Forwarded < 4 || st.TTLExceeded < 2 {
		t.Errorf("router stats %+v: want >= 4 forwarded, >= 2 TTL exceeded", st)
	}
}

// TestKernelMulticastDropped checks that what the kernel sends to IPv6
// multicast on its own (MLD reports, router solicitations) and a ping to
// all-nodes are dropped and counted, and the stack works on.
func TestKernelMulticastDropped(t *testing.T) {
	nstest.RequireCommand(t, "ping", "iputils-ping")
	ns, s, nic := attached(t, stack.Config{Name: "host"})
	before := s.Stats()
	// The answer, if any, comes from the kernel itself (multicast loop).
	// Four requests, of which at least two must arrive: under load the
	// kernel may still hold the first back while the link comes up.
	ns.Exec("ping", "-6", "-n", "-c", "4", "-i", "0.2", "-W", "1", "-I", devName, "ff02::1")
	after := s.Stats()
	if after.NotForUs < before.NotForUs+2 {
		t.Errorf("NotForUs %d -> %d: want the multicast echo requests dropped as not for us", before.NotForUs, after.NotForUs)
	}
	if out, err := ns.Exec("ping", "-n", "-c", "1", "-W", "2", "10.99.0.2"); err != nil {
		t.Fatalf("ping after multicast: %v\n%s", err, out)
	}
	t.Logf("stack stats %+v, nic counters %+v", s.Stats(), nic.Counters())
}

func TestDeviceStaysInNamespace(t *testing.T) {
	ns := nstest.New(t)
	d, err := tun.OpenInNamespace(ns.Path(), devName)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if ifc, err := net.InterfaceByName(devName); err == nil {
		t.Fatalf("%s is in the test process's namespace: %+v", devName, ifc)
	}
	err = ns.Do(func() error {
		_, err := net.InterfaceByName(devName)
		return err
	})
	if err != nil {
		t.Fatalf("%s is not in namespace %s: %v", devName, ns.Name(), err)
	}
	// Our own thread pool is unharmed: this goroutine still sees the
	// process's namespace.
	if _, err := net.InterfaceByName(devName); err == nil {
		t.Fatalf("%s visible after ns.Do returned", devName)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	ns := nstest.New(t)
	d, err := tun.OpenInNamespace(ns.Path(), devName)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := d.ReadPacket(make([]byte, 1500))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the read block
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, tun.ErrClosed) {
			t.Errorf("ReadPacket after Close = %v, want ErrClosed", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Close did not unblock ReadPacket")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := d.WritePacket([]byte{0x45}); !errors.Is(err, tun.ErrClosed) {
		t.Errorf("WritePacket after Close = %v, want ErrClosed", err)
	}
	if _, err := d.ReadPacket(make([]byte, 10)); !errors.Is(err, tun.ErrClosed) {
		t.Errorf("ReadPacket after Close = %v, want ErrClosed", err)
	}
	// The device is not persistent: closing it removes the interface.
	if out, err := ns.Exec("ip", "link", "show", devName); err == nil {
		t.Errorf("%s still exists after Close:\n%s", devName, out)
	}
}

func TestAttachStop(t *testing.T) {
	ns := nstest.New(t)
	d, err := tun.OpenInNamespace(ns.Path(), devName)
	if err != nil {
		t.Fatal(err)
	}
	s := stack.New(stack.Config{Name: "host", Clock: stack.SystemClock{}})
	if _, _, err := tun.Attach(d, s, "tun0", 40, ourV4); err == nil {
		t.Fatal("Attach with MTU 40 succeeded")
	}
	// A failed Attach leaves d open and the caller's.
	nic, stop, err := tun.Attach(d, s, "tun0", 1500, ourV4)
	if err != nil {
		t.Fatal(err)
	}
	if err := stopWithin(t, stop); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := stopWithin(t, stop); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	e, err := s.OpenEcho(false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Send(kernV4, 1, 0, nil); !errors.Is(err, tun.ErrClosed) {
		t.Errorf("echo through a stopped attachment: %v, want ErrClosed", err)
	}
	if c := nic.Counters(); c.TxDropped != 1 {
		t.Errorf("TxDropped = %d, want 1", c.TxDropped)
	}
}

func TestOpenNeedsCapNetAdmin(t *testing.T) {
	ns := nstest.New(t)
	type result struct {
		err   error
		setup error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread gives up a capability, so it must
		// end with this goroutine rather than go back to the pool.
		runtime.LockOSThread()
		fd, err := unix.Open(ns.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{setup: err}
			return
		}
		defer unix.Close(fd)
		// Enter the namespace first, so that even if dropping the
		// capability silently failed the device would be made there.
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- result{setup: err}
			return
		}
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- result{setup: err}
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- result{setup: err}
			return
		}
		d, err := tun.Open(devName)
		if d != nil {
			d.Close()
		}
		done <- result{err: err}
	}()
	res := <-done
	if res.setup != nil {
		t.Fatalf("dropping CAP_NET_ADMIN on a thread in the namespace: %v", res.setup)
	}
	want := `creating TUN device "labtun0" needs CAP_NET_ADMIN (run as root or grant the capability)`
	if res.err == nil || !strings.Contains(res.err.Error(), want) {
		t.Fatalf("Open without CAP_NET_ADMIN: %v, want an error containing %q", res.err, want)
	}
	if !errors.Is(res.err, os.ErrPermission) {
		t.Errorf("errors.Is(%v, os.ErrPermission) = false", res.err)
	}
}

// TestOpenBadName needs no privileges: the name is refused before the
// kernel is asked.
func TestOpenBadName(t *testing.T) {
	_, err := tun.Open("a-name-longer-than-fifteen")
	if err == nil || !strings.Contains(err.Error(), "name longer than 15 bytes") {
		t.Fatalf("Open(long name) = %v", err)
	}
}
