//go:build linux

package tun_test

// Interop between our TCP and the Linux kernel's (DESIGN.md, "Testing"): a
// namespace holds a TUN device whose other side is one of our stacks, with
// labnet's services on it. The kernel's curl and socat talk to our http and
// echo services, a kernel client fills our discard service, and our client
// talks to a kernel echo server; all of it through a link that loses a
// seeded-random 5% of the packets our side sends and receives, so both
// TCPs retransmit, recover and reorder.
//
// Everything kernel-side runs inside the test's namespace: the curl and
// socat processes through ip netns exec, the kernel's Go sockets through
// nstest's Do. Debian packages for the commands: curl, socat (and iproute2,
// which nstest needs).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/services"
	"github.com/labnet-dev/labnet/node/tun"
	"github.com/labnet-dev/labnet/node/tun/nstest"
	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/tcp"
	"github.com/labnet-dev/labnet/stack/udp"
	"github.com/labnet-dev/labnet/stack/wire"
)

const (
	// lossRate is the share of packets our side of the link drops, each
	// way: netem's "loss 5%" on our interface's egress and ingress.
	lossRate = 0.05
	// lossSeed seeds the drop decisions, so a run's pattern of losses can
	// be had again (concurrent senders interleave, so not exactly).
	lossSeed = 0x1ab_7e57

	// bulkBytes is what the bulk transfers move.
	bulkBytes = 10 << 20
	// bulkTimeout bounds one bulk transfer: generous, since a slow
	// machine under -race and 5% loss each way is still a pass.
	bulkTimeout = 120 * time.Second
)

// kernelLab is a namespace whose TUN device labtun0 (10.99.0.1/24,
// fd00:99::1/64) leads to our stack (10.99.0.2/24, fd00:99::2/64) through a
// lossy link, with TCP, UDP and the http, echo and discard services on the
// stack.
type kernelLab struct {
	ns   *nstest.NS
	nic  *stack.NIC
	tcp  *tcp.Protocol
	link *lossyLink
}

// newKernelLab builds the lab; everything is torn down, and the namespace
// removed, when the test ends.
func newKernelLab(t *testing.T, loss float64) *kernelLab {
	t.Helper()
	s := stack.New(stack.Config{Name: "labnet", Clock: stack.SystemClock{}})
	tp := tcp.New(s, tcp.Options{})
	up := udp.New(s)
	ns := nstest.New(t)

	d, err := tun.OpenInNamespace(ns.Path(), devName)
	if err != nil {
		t.Fatal(err)
	}
	// tun.Attach's link writes every packet; the impairment must sit
	// between the stack and the device, so the NIC and its reader are
	// built here.
	link := newLossyLink(d, loss, lossSeed)
	nic, err := s.AddInterface("tun0", 1500, link, ourV4, ourV6)
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	stop := link.start(s, nic)
	// Cleanups run last-registered first: the services stop, then TCP
	// and UDP, then the device goes, then (nstest's) the namespace.
	t.Cleanup(func() {
		if err := stopWithin(t, stop); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	t.Cleanup(func() { tp.Close(); up.Close() })

	// A queue deep enough that the kernel does not drop what it sends us
	// while our reader waits for a CPU: the default 500 packets overflow
	// when other tests load the machine, and the clean link (loss=0%)
	// would then lose packets after all.
	ns.Run("ip", "link", "set", devName, "up", "mtu", "1500", "txqueuelen", "10000")
	ns.Run("ip", "addr", "add", "10.99.0.1/24", "dev", devName)
	ns.Run("ip", "-6", "addr", "add", "fd00:99::1/64", "dev", devName, "nodad")
	// Make the kernel ask for ECN (RFC 3168) in its SYNs, so its SYN has
	// ECE and CWR set: our stack does not do ECN and must answer with a
	// plain SYN-ACK, after which the kernel sends no ECN marks either.
	// The sysctl is per namespace (a thread inside it sees the
	// namespace's /proc/sys/net) and covers IPv6 too.
	err = ns.Do(func() error { return os.WriteFile("/proc/sys/net/ipv4/tcp_ecn", []byte("1\n"), 0o644) })
	if err != nil {
		t.Fatalf("net.ipv4.tcp_ecn=1 in the namespace: %v", err)
	}
	if out := ns.Run("cat", "/proc/sys/net/ipv4/tcp_ecn"); strings.TrimSpace(string(out)) != "1" {
		t.Fatalf("net.ipv4.tcp_ecn in the namespace is %q after setting it to 1", out)
	}

	host := services.HostInfo{Name: "labnet", Lab: "interop", Interfaces: []services.InterfaceInfo{
		{Name: nic.Name(), Network: devName, Addresses: nic.Addresses()},
	}}
	set, err := services.Start(t.Context(), stackNet{tcp: tp, udp: up}, host, []string{"http", "echo", "discard"}, nil)
	if err != nil {
		t.Fatalf("start services on our stack: %v", err)
	}
	t.Cleanup(func() {
		if err := set.Close(); err != nil {
			t.Errorf("close services: %v", err)
		}
	})
	return &kernelLab{ns: ns, nic: nic, tcp: tp, link: link}
}

// logStats logs what the stack, TCP and the link counted.
func (l *kernelLab) logStats(t *testing.T) {
	t.Helper()
	t.Logf("link: dropped %d of %d sent, %d of %d received; kernel SYNs asking for ECN %d; tcp %+v; nic %+v",
		l.link.txDropped.Load(), l.link.txTotal.Load(), l.link.rxDropped.Load(), l.link.rxTotal.Load(),
		l.link.kernelECNSyns.Load(), l.tcp.Stats(), l.nic.Counters())
}

// watch samples our TCP's connections on local port every 50ms until the
// returned stop is called, which returns the last sample of one that was
// not listening: what our side looked like before a failure.
func (l *kernelLab) watch(port uint16) (stop func() tcp.Info) {
	done := make(chan struct{})
	result := make(chan tcp.Info, 1)
	go func() {
		var last tcp.Info
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, ci := range l.tcp.Connections() {
				if ci.Local.Port() == port && ci.Remote.IsValid() {
					last = ci
				}
			}
			select {
			case <-done:
				result <- last
				return
			case <-tick.C:
			}
		}
	}()
	return func() tcp.Info {
		close(done)
		return <-result
	}
}

// checkECN checks that ECN stayed off: our stack, which does not do ECN,
// never sets ECE or CWR, so the kernel never marks its packets ECN-capable,
// even though (when it dialled us) it asked for ECN in its SYNs.
func (l *kernelLab) checkECN(t *testing.T, kernelDialled bool) {
	t.Helper()
	syns, ours, ect := l.link.kernelECNSyns.Load(), l.link.ourECNFlags.Load(), l.link.kernelECT.Load()
	if kernelDialled && syns == 0 {
		t.Errorf("no kernel SYN asked for ECN: is net.ipv4.tcp_ecn=1 in effect?")
	}
	if ours != 0 || ect != 0 {
		t.Errorf("ECN: %d of our segments had ECE or CWR, %d kernel packets were ECN-capable; want 0 and 0", ours, ect)
	}
}

// lossyLink is the wire between our stack's NIC and the TUN device, with a
// seeded-random loss each way.
type lossyLink struct {
	d    *tun.Device
	rate float64

	mu  sync.Mutex // guards rng: Send is called from many goroutines
	rng *rand.Rand

	txTotal, txDropped, rxTotal, rxDropped atomic.Uint64
	// ECN (RFC 3168) seen on TCP: the kernel's SYNs asking for it, our
	// segments with ECE or CWR, the kernel's packets marked ECN-capable.
	kernelECNSyns, ourECNFlags, kernelECT atomic.Uint64
}

func newLossyLink(d *tun.Device, rate float64, seed uint64) *lossyLink {
	return &lossyLink{d: d, rate: rate, rng: rand.New(rand.NewPCG(seed, seed))}
}

func (l *lossyLink) lose() bool {
	if l.rate <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rng.Float64() < l.rate
}

// Send writes pkt to the device, or drops it as a lossy wire would: the
// stack hears nothing of it. It does not keep pkt.
func (l *lossyLink) Send(_ netip.Addr, pkt []byte) error {
	l.txTotal.Add(1)
	if flags, _, ok := tcpECN(pkt); ok && flags&(wire.TCPFlagECE|wire.TCPFlagCWR) != 0 {
		l.ourECNFlags.Add(1)
	}
	if l.lose() {
		l.txDropped.Add(1)
		return nil
	}
	return l.d.WritePacket(pkt)
}

// start delivers what the kernel sends, less the losses, to s through nic
// from a goroutine of its own. stop closes the device and waits for that
// goroutine, returning the read error that ended it early, if any.
func (l *lossyLink) start(s *stack.Stack, nic *stack.NIC) (stop func() error) {
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, err := l.d.ReadPacket(buf)
			if errors.Is(err, tun.ErrClosed) {
				return
			}
			if err != nil {
				readErr = err
				return
			}
			l.rxTotal.Add(1)
			if n == 0 {
				continue
			}
			if flags, ecn, ok := tcpECN(buf[:n]); ok {
				if flags&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN && flags&(wire.TCPFlagECE|wire.TCPFlagCWR) != 0 {
					l.kernelECNSyns.Add(1)
				}
				if ecn != 0 {
					l.kernelECT.Add(1)
				}
			}
			if l.lose() {
				l.rxDropped.Add(1)
				continue
			}
			// Deliver takes ownership of the packet: a copy each.
			s.Deliver(nic, bytes.Clone(buf[:n]))
		}
	}()
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			closeErr := l.d.Close()
			<-done
			err = errors.Join(readErr, closeErr)
		})
		return err
	}
}

// tcpECN returns the TCP flags and the IP header's ECN field of pkt, if it
// is a well-formed TCP packet.
func tcpECN(pkt []byte) (flags, ecn uint8, ok bool) {
	var seg []byte
	switch {
	case len(pkt) > 0 && pkt[0]>>4 == 4:
		ip := wire.IPv4(pkt)
		if ip.Check() != nil || ip.Protocol() != wire.ProtoTCP || ip.IsFragment() {
			return 0, 0, false
		}
		seg, ecn = ip.Payload(), ip.TOS()&3
	case len(pkt) > 0 && pkt[0]>>4 == 6:
		ip := wire.IPv6(pkt)
		if ip.Check() != nil || ip.NextHeader() != wire.ProtoTCP {
			return 0, 0, false
		}
		seg, ecn = ip.Payload(), ip.TrafficClass()&3
	default:
		return 0, 0, false
	}
	if wire.TCP(seg).Check() != nil {
		return 0, 0, false
	}
	return wire.TCP(seg).Flags(), ecn, true
}

// stackNet is services.Net over our stack's sockets, as a virtual host
// gives it: TCP and UDP ports on every address of both families.
type stackNet struct {
	tcp *tcp.Protocol
	udp *udp.Protocol // nil: no UDP
}

func (n stackNet) ListenTCP(port uint16) (net.Listener, error) {
	// The zero address is [::], which takes both families.
	l, err := n.tcp.Listen(netip.AddrPortFrom(netip.Addr{}, port))
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (n stackNet) ListenUDP(port uint16) (net.PacketConn, error) {
	if n.udp == nil {
		return nil, errors.New("udp not available")
	}
	// The zero address: every address of both families.
	pc, err := n.udp.ListenPacket(netip.AddrPortFrom(netip.Addr{}, port))
	if err != nil {
		return nil, err
	}
	return pc, nil
}

// nsCommand is a command run inside the namespace, killed when ctx is done.
func nsCommand(ctx context.Context, ns *nstest.NS, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name()}, args...)...)
}

// hashCounter is an io.Writer that hashes and counts what it is given.
type hashCounter struct {
	h hash.Hash
	n int64
}

func newHashCounter() *hashCounter { return &hashCounter{h: sha256.New()} }

func (w *hashCounter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	return w.h.Write(b)
}

func (w *hashCounter) sum() string { return hex.EncodeToString(w.h.Sum(nil)) }

// rate formats n bytes moved in d as bytes per second.
func rate(n int64, d time.Duration) string {
	bps := float64(n) / d.Seconds()
	return fmt.Sprintf("%d bytes in %v: %.0f bytes/s (%.2f MiB/s)", n, d.Round(time.Millisecond), bps, bps/(1<<20))
}

// payload is n seeded-random bytes.
func payload(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)}).Read(b)
	return b
}

// pipeNet is a services.Net in memory: its TCP listener's connections are
// net.Pipe ends, dialled with dial. It runs the http service's reference
// copy, whose answers the kernel's downloads from our stack must equal,
// without a kernel socket anywhere.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeNet() *pipeNet { return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})} }

func (p *pipeNet) ListenTCP(uint16) (net.Listener, error) { return p, nil }
func (p *pipeNet) ListenUDP(uint16) (net.PacketConn, error) {
	return nil, errors.New("pipeNet: no udp")
}

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeNet) Close() error   { p.once.Do(func() { close(p.done) }); return nil }
func (p *pipeNet) Addr() net.Addr { return pipeAddr{} }

func (p *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-p.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// referenceBytes is the SHA-256 of GET /bytes/n from the http service run
// in memory: what a download from our stack must hash to.
func referenceBytes(t *testing.T, n int) string {
	t.Helper()
	pn := newPipeNet()
	set, err := services.Start(t.Context(), pn, services.HostInfo{Name: "reference"}, []string{"http"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: pn.dial}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(fmt.Sprintf("http://reference/bytes/%d", n))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	w := newHashCounter()
	if _, err := io.Copy(w, resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || w.n != int64(n) {
		t.Fatalf("reference /bytes/%d: %s, %d bytes", n, resp.Status, w.n)
	}
	return w.sum()
}

// TestKernelCurlHTTP: the kernel's curl fetches our http service's page and
// a 10 MB /bytes download, over IPv4 and IPv6.
func TestKernelCurlHTTP(t *testing.T) {
	nstest.RequireCommand(t, "curl", "curl")
	lab := newKernelLab(t, lossRate)
	const n = 10_000_000
	want := referenceBytes(t, n)

	for _, tc := range []struct{ host, client string }{
		{"10.99.0.2", "10.99.0.1"},
		{"[fd00:99::2]", "fd00:99::1"},
	} {
		t.Run(tc.client, func(t *testing.T) {
			// -g: the brackets of an IPv6 literal are not a glob.
			out, err := lab.ns.Exec("curl", "-sS", "-g", "--fail", "--max-time", "30", "http://"+tc.host+"/")
			if err != nil {
				t.Fatalf("curl http://%s/: %v\n%s", tc.host, err, out)
			}
			for _, s := range []string{"labnet host interop/labnet", "You are " + tc.client + " port ", "I am " + strings.Trim(tc.host, "[]") + " port 80"} {
				if !bytes.Contains(out, []byte(s)) {
					t.Errorf("curl http://%s/: page lacks %q:\n%s", tc.host, s, out)
				}
			}

			url := fmt.Sprintf("http://%s/bytes/%d", tc.host, n)
			var stderr bytes.Buffer
			w := newHashCounter()
			cmd := nsCommand(t.Context(), lab.ns, "curl", "-sS", "-g", "--fail", "--max-time", "60", url)
			cmd.Stdout, cmd.Stderr = w, &stderr
			stopWatch := lab.watch(80)
			start := time.Now()
			err = cmd.Run()
			elapsed := time.Since(start)
			last := stopWatch()
			if err != nil {
				t.Fatalf("curl %s: %v after %d bytes: %s\nour side's connection when last seen: %+v", url, err, w.n, stderr.Bytes(), last)
			}
			if w.n != n || w.sum() != want {
				t.Fatalf("curl %s: %d bytes with sha256 %s, want %d bytes with sha256 %s", url, w.n, w.sum(), n, want)
			}
			t.Logf("kernel curl <- our http (%s): %s", url, rate(w.n, elapsed))
		})
	}
	lab.logStats(t)
	lab.checkECN(t, true)
	if st := lab.tcp.Stats(); st.Retransmits == 0 {
		t.Errorf("tcp %+v: no retransmits: was the link lossy?", st)
	}
}

// TestKernelSocatEcho: the kernel's socat talks to our echo service, TCP
// (a line, then 1 MiB) and UDP.
func TestKernelSocatEcho(t *testing.T) {
	nstest.RequireCommand(t, "socat", "socat")
	lab := newKernelLab(t, lossRate)
	big := payload(1<<20, 1)

	for _, tc := range []struct{ name, tcp, udp string }{
		{"10.99.0.2", "TCP4:10.99.0.2:7", "UDP4:10.99.0.2:7"},
		{"fd00:99::2", "TCP6:[fd00:99::2]:7", "UDP6:[fd00:99::2]:7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, in := range [][]byte{[]byte("hello\n"), big} {
				var out, stderr bytes.Buffer
				// -t: after stdin's end, how long socat waits for the
				// echo to finish; it exits as soon as we close.
				cmd := nsCommand(t.Context(), lab.ns, "socat", "-t", "60", "-", tc.tcp)
				cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &out, &stderr
				start := time.Now()
				if err := cmd.Run(); err != nil {
					t.Fatalf("socat - %s: %v: %s", tc.tcp, err, stderr.Bytes())
				}
				elapsed := time.Since(start)
				if !bytes.Equal(out.Bytes(), in) {
					t.Fatalf("socat - %s: sent %d bytes, got %d back, not the same", tc.tcp, len(in), out.Len())
				}
				if len(in) > 1000 {
					t.Logf("kernel socat <-> our echo (%s): %s each way", tc.tcp, rate(int64(len(in)), elapsed))
				}
			}

			// UDP: a datagram each way, lost with 1 - 0.95² ≈ 10%:
			// a few tries.
			var got []byte
			for range 5 {
				var out bytes.Buffer
				// -t: how long to wait for the answer after stdin's end.
				cmd := nsCommand(t.Context(), lab.ns, "socat", "-t", "1", "-", tc.udp)
				cmd.Stdin, cmd.Stdout = strings.NewReader("hello\n"), &out
				if cmd.Run() == nil && out.String() == "hello\n" {
					got = out.Bytes()
					break
				}
			}
			if got == nil {
				t.Errorf("socat - %s: no echo of \"hello\\n\" in 5 tries", tc.udp)
			}
		})
	}
	lab.logStats(t)
	lab.checkECN(t, true)
}

// TestKernelSendsToDiscard: a kernel TCP client sends 10 MiB to our discard
// service, which closes when the client does, so the client's read of that
// close marks when all of it arrived.
func TestKernelSendsToDiscard(t *testing.T) {
	lab := newKernelLab(t, lossRate)
	data := payload(bulkBytes, 2)
	for _, dst := range []string{"10.99.0.2:9", "[fd00:99::2]:9"} {
		t.Run(dst, func(t *testing.T) {
			var c net.Conn
			err := lab.ns.Do(func() error {
				var err error
				c, err = net.DialTimeout("tcp", dst, 10*time.Second)
				return err
			})
			if err != nil {
				t.Fatalf("kernel dial %s: %v", dst, err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(bulkTimeout))
			start := time.Now()
			if _, err := c.Write(data); err != nil {
				t.Fatalf("kernel write to %s: %v", dst, err)
			}
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, c)
			elapsed := time.Since(start)
			if err != nil || n != 0 {
				t.Fatalf("kernel read from discard %s: %d bytes, %v; want 0 bytes then EOF", dst, n, err)
			}
			t.Logf("kernel client -> our discard (%s): %s", dst, rate(bulkBytes, elapsed))
		})
	}
	lab.logStats(t)
	lab.checkECN(t, true)
}

// TestKernelServesStack: our TCP client talks to a kernel echo server in
// the namespace, 10 MiB each way over IPv4 and IPv6, and checks what the
// connection negotiated: the MSS of the 1500-byte MTU less the timestamp
// option (RFC 6691), SACK, timestamps and window scaling. A clean link
// first, for a baseline, then the lossy one.
func TestKernelServesStack(t *testing.T) {
	for _, loss := range []float64{0, lossRate} {
		t.Run(fmt.Sprintf("loss=%g%%", loss*100), func(t *testing.T) {
			lab := newKernelLab(t, loss)
			kernelEchoServer(t, lab.ns, ":9000")
			for _, tc := range []struct {
				dst netip.AddrPort
				mss int
			}{
				{netip.AddrPortFrom(kernV4, 9000), 1500 - 20 - 20 - 12},
				{netip.AddrPortFrom(kernV6, 9000), 1500 - 40 - 20 - 12},
			} {
				t.Run(tc.dst.String(), func(t *testing.T) {
					info := lab.echoThrough(t, tc.dst, payload(bulkBytes, 3))
					if info.MSS != tc.mss || !info.SACK || !info.Timestamps || info.SndWscale == 0 || info.RcvWscale == 0 {
						t.Errorf("negotiated MSS %d, SACK %v, timestamps %v, window scale %d/%d; want MSS %d with SACK, timestamps and window scaling both ways",
							info.MSS, info.SACK, info.Timestamps, info.SndWscale, info.RcvWscale, tc.mss)
					}
					if loss > 0 && info.Retransmits == 0 {
						t.Errorf("no retransmits sending %d bytes through %g%% loss", bulkBytes, loss*100)
					}
				})
			}
			lab.logStats(t)
			lab.checkECN(t, false)
		})
	}
}

// kernelEchoServer serves TCP echo on addr from a kernel socket in ns until
// the test ends: what it reads it sends back, and after the client's FIN
// its own.
func kernelEchoServer(t *testing.T, ns *nstest.NS, addr string) {
	t.Helper()
	var l net.Listener
	err := ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("kernel listen %s: %v", addr, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(bulkTimeout))
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c) // until our close
			})
		}
	})
}

// echoThrough dials dst from our stack, sends data while reading the echo,
// half-closes, checks the echo's SHA-256 and returns the connection's Info.
func (l *kernelLab) echoThrough(t *testing.T, dst netip.AddrPort, data []byte) tcp.Info {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	c, err := l.tcp.Dial(ctx, dst)
	cancel()
	if err != nil {
		t.Fatalf("our dial %v: %v", dst, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bulkTimeout))

	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	h := newHashCounter()
	_, rerr := io.Copy(h, c)
	elapsed := time.Since(start)
	info := c.Info()
	if err := <-werr; err != nil {
		t.Fatalf("write to %v: %v; %+v", dst, err, info)
	}
	if rerr != nil {
		t.Fatalf("read from %v: %v after %d bytes; %+v", dst, rerr, h.n, info)
	}
	want := sha256.Sum256(data)
	if h.n != int64(len(data)) || h.sum() != hex.EncodeToString(want[:]) {
		t.Fatalf("echo from %v: %d bytes with sha256 %s, want %d bytes with sha256 %x", dst, h.n, h.sum(), len(data), want)
	}
	t.Logf("our client <-> kernel echo (%v): %s each way", dst, rate(int64(len(data)), elapsed))
	t.Logf("connection: %+v", info)
	return info
}
