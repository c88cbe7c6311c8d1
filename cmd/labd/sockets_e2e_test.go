package main_test

// Real programs in the lab: curl through labctl port-forward and labctl
// socks, a real TCP server on 127.0.0.1 reached through labctl expose, and
// the bad input each of them refuses. Everything real listens on loopback.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/tun/nstest"
)

// bg is a labctl process running in the background (port-forward, socks,
// expose).
type bg struct {
	t      testing.TB
	cmd    *exec.Cmd
	stderr *syncBuffer
	lines  chan string // stdout
	done   chan error
}

// syncBuffer is a bytes.Buffer safe for a writer and readers.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

// background starts labctl against d.
func (d *labd) background(t testing.TB, args ...string) *bg {
	t.Helper()
	cmd := d.labctlCommand(context.Background(), args...)
	p := &bg{t: t, cmd: cmd, stderr: newSyncBuffer(), lines: make(chan string, 100), done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// line waits for a line of stdout matching re and returns its submatches.
func (p *bg) line(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("labctl %s ended before printing %q: %v\nstderr:\n%s", strings.Join(p.cmd.Args[1:], " "), re, <-p.done, p.stderr)
			}
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			p.t.Fatalf("labctl %s: no line %q after 20s\nstderr:\n%s", strings.Join(p.cmd.Args[1:], " "), re, p.stderr)
		}
	}
}

// interrupt sends SIGINT (Ctrl-C) and checks that labctl exits 0.
func (p *bg) interrupt() {
	p.t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("labctl %s after Ctrl-C: %v\nstderr:\n%s", strings.Join(p.cmd.Args[1:], " "), err, p.stderr)
		}
	case <-time.After(20 * time.Second):
		p.t.Fatalf("labctl %s did not exit after Ctrl-C", strings.Join(p.cmd.Args[1:], " "))
	}
}

// curl runs curl and returns its stdout; it fails the test when curl fails.
func curl(t testing.TB, args ...string) []byte {
	t.Helper()
	nstest.RequireCommand(t, "curl", "curl")
	out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "60"}, args...)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("curl %s: %v: %s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// fetchSum is the SHA-256 of what labctl fetch gets from a virtual host.
func (d *labd) fetchSum(t *testing.T, host, url string) [32]byte {
	t.Helper()
	file := filepath.Join(t.TempDir(), "fetched")
	d.ok("fetch", host, url, "-O", file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func twoLans(t testing.TB) *labd {
	d := startLabd(t, t.TempDir(), "")
	d.ok("apply", "-f", examples(t, "two-lans.yaml"))
	d.waitPing("h1", "h2")
	return d
}

// TestPortForward: curl through port-forward gets h2's /bytes/10000000
// intact; a half-close and a reset pass through; Ctrl-C ends it cleanly.
func TestPortForward(t *testing.T) {
	d := twoLans(t)
	pf := d.background(t, "port-forward", "h2", ":80", ":7")
	web := pf.line(`Forwarding from (127\.0\.0\.1:\d+) -> h2:80`)[1]
	echo := pf.line(`Forwarding from (127\.0\.0\.1:\d+) -> h2:7`)[1]

	const n = 10000000
	body := curl(t, "http://"+web+"/bytes/10000000")
	if len(body) != n {
		t.Fatalf("curl through port-forward: %d bytes, want %d", len(body), n)
	}
	if sha256.Sum256(body) != d.fetchSum(t, "h1", "http://h2/bytes/10000000") {
		t.Fatal("curl through port-forward got other bytes than labctl fetch")
	}

	// Half-close: echo sends back everything, then closes after our FIN.
	c, err := net.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("half-close "), 50000)
	go func() {
		c.Write(want)
		c.(*net.TCPConn).CloseWrite()
	}()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo through port-forward: %d of %d bytes, %v", len(got), len(want), err)
	}

	// Reset: closing with SO_LINGER 0 sends a RST, which resets h2's
	// connection: it leaves h2's table at once (no FIN exchange, no
	// TIME-WAIT on either side).
	c, err = net.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x"))
	buf := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	// h2's end of the lab connection: ESTABLISHED, to its own port 7.
	m := regexp.MustCompile(`ESTABLISHED\s+(10\.0\.2\.10:\d+)\s+10\.0\.2\.10:7\s`).FindStringSubmatch(d.ok("connections", "h2", "--tcp"))
	if m == nil {
		t.Fatalf("no connection to port 7 on h2 while one is open:\n%s", d.ok("connections", "h2", "--tcp"))
	}
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	// Both ends go at once, without the TIME-WAIT a FIN would leave.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := d.ok("connections", "h2", "--tcp")
		if !strings.Contains(out, m[1]+" ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h2 still has %s 10s after the reset:\n%s", m[1], out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pf.interrupt()
}

// socksTopology: a ── r1 ── r2 ── b, with b's services two routers away
// from a.
const socksTopology = `name: far
networks:
  - {name: n1, ipv4: 10.7.1.0/24}
  - {name: n2, ipv4: 10.7.2.0/24}
  - {name: n3, ipv4: 10.7.3.0/24}
hosts:
  - name: a
    interfaces: [{network: n1, ipv4: 10.7.1.10/24}]
    gateway: 10.7.1.1
  - name: r1
    forwarding: true
    interfaces: [{network: n1, ipv4: 10.7.1.1/24}, {network: n2, ipv4: 10.7.2.1/24}]
    routes: [{to: 10.7.3.0/24, via: 10.7.2.2}]
  - name: r2
    forwarding: true
    interfaces: [{network: n2, ipv4: 10.7.2.2/24}, {network: n3, ipv4: 10.7.3.1/24}]
    routes: [{to: 10.7.1.0/24, via: 10.7.2.1}]
  - name: b
    services: [http, echo]
    interfaces: [{network: n3, ipv4: 10.7.3.10/24}]
    gateway: 10.7.3.1
`

// TestSocks: curl --socks5 reaches a host two routers away, by address
// and (socks5h) by name; UDP ASSOCIATE carries datagrams to b's echo.
func TestSocks(t *testing.T) {
	d := startLabd(t, t.TempDir(), "")
	topo := filepath.Join(t.TempDir(), "far.yaml")
	os.WriteFile(topo, []byte(socksTopology), 0o644)
	d.ok("apply", "-f", topo)
	d.waitPing("far/a", "b")
	p := d.background(t, "socks", "far/a", "--listen", "127.0.0.1:0")
	proxy := p.line(`SOCKS5 proxy on (127\.0\.0\.1:\d+), connecting from a`)[1]

	// b's page says who asked: a, whose packets crossed r1 and r2.
	page := string(curl(t, "--socks5", proxy, "http://10.7.3.10/"))
	if !strings.Contains(page, "You are 10.7.1.10") {
		t.Fatalf("b's page through socks5:\n%s", page)
	}
	body := curl(t, "--socks5-hostname", proxy, "http://b/bytes/1000000")
	if len(body) != 1000000 || sha256.Sum256(body) != d.fetchSum(t, "far/a", "http://b/bytes/1000000") {
		t.Fatalf("socks5h by name: %d bytes, or other bytes than labctl fetch", len(body))
	}

	// A port nobody listens on, a name the lab does not have: curl gets
	// the SOCKS error, and the proxy goes on.
	for _, url := range []string{"http://b:81/", "http://nowhere/"} {
		out, err := exec.Command("curl", "-sS", "--max-time", "20", "--socks5-hostname", proxy, url).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "SOCKS5") {
			t.Errorf("curl %s: %v: %s", url, err, out)
		}
	}

	// UDP ASSOCIATE (RFC 1928 §7), by hand.
	ctl, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	ctl.SetDeadline(time.Now().Add(20 * time.Second))
	ctl.Write([]byte{5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	reply := make([]byte, 2+10)
	if _, err := io.ReadFull(ctl, reply); err != nil || reply[1] != 0 || reply[3] != 0 || reply[5] != 1 {
		t.Fatalf("UDP ASSOCIATE reply % x, %v", reply, err)
	}
	relay := netip.AddrPortFrom(netip.AddrFrom4([4]byte(reply[6:10])), binary.BigEndian.Uint16(reply[10:]))
	u, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(relay))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, dst := range [][]byte{{1, 10, 7, 3, 10, 0, 7}, append([]byte{3, 1, 'b'}, 0, 7)} {
		dg := append(append([]byte{0, 0, 0}, dst...), "over udp"...)
		u.Write(dg)
		u.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 100)
		n, err := u.Read(buf)
		// The answer comes from b's address, port 7.
		want := append([]byte{0, 0, 0, 1, 10, 7, 3, 10, 0, 7}, "over udp"...)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("echo over UDP to % x: % x, %v; want % x", dst, buf[:n], err, want)
		}
	}
	pySocks(t, proxy)
	p.interrupt()
}

// pySocksClient connects through the proxy with PySocks: TCP to b by name
// (the proxy resolves it), UDP to b's echo.
const pySocksClient = `import socket, sys, socks
host, port = sys.argv[1], int(sys.argv[2])
s = socks.socksocket()
s.set_proxy(socks.SOCKS5, host, port, rdns=True)
s.settimeout(20)
s.connect(("b", 80))
s.sendall(b"GET / HTTP/1.0\r\nHost: b\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.decode().splitlines()[0])
print([l for l in data.decode().splitlines() if l.startswith("You are")][0])
u = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
u.set_proxy(socks.SOCKS5, host, port)
u.settimeout(20)
u.sendto(b"hello over udp", ("10.7.3.10", 7))
d, addr = u.recvfrom(1024)
print(d.decode(), addr[0], addr[1])
`

// pySocks runs pySocksClient with a python3 that has PySocks (Debian
// package python3-socks), or skips.
func pySocks(t *testing.T, proxy string) {
	t.Helper()
	var py string
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import socks").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Log("skipping the Python SOCKS client: no python3 with PySocks (Debian package python3-socks)")
		return
	}
	host, port, _ := net.SplitHostPort(proxy)
	out, err := exec.Command(py, "-c", pySocksClient, host, port).CombinedOutput()
	want := "HTTP/1.0 200 OK\nYou are 10.7.1.10 port"
	if err != nil || !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), "hello over udp 10.7.3.10 7") {
		t.Errorf("Python SOCKS client: %v\n%s\nwant %q... and the UDP echo from 10.7.3.10 7", err, out, want)
	}
}

// TestExpose: a real TCP server on 127.0.0.1 answers a connection made by
// a virtual host, and labctl reports the address the server saw.
func TestExpose(t *testing.T) {
	d := twoLans(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "real server, you are %s\n", r.RemoteAddr)
	})}
	go srv.Serve(l)
	defer srv.Close()

	p := d.background(t, "expose", "h2:8080", "--to", l.Addr().String())
	p.line(`Exposing h2:8080 \(listening on \[::\]:8080\) -> 127\.0\.0\.1:\d+`)
	out := d.ok("fetch", "h1", "http://h2:8080/")
	m := regexp.MustCompile(`real server, you are (127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("fetch through expose: %q", out)
	}
	// labctl said which lab host connected and where the real server
	// saw it from.
	want := "Connection from 10.0.1.10:"
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), "which sees it from "+m[1]) {
		if time.Now().After(deadline) {
			t.Fatalf("expose did not report %s:\n%s", m[1], p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.stderr.String(), want) {
		t.Errorf("expose log does not say %q:\n%s", want, p.stderr)
	}

	// The real server gone: the lab's connection is reset, expose goes on.
	srv.Close()
	if _, errs, code := d.labctl("fetch", "h1", "http://h2:8080/"); code == 0 || !strings.Contains(errs, "reset") {
		t.Errorf("fetch with the real server gone: exit %d, %s", code, errs)
	}
	p.interrupt()
}

// TestSocketBadInput: a host that does not exist, a port nobody listens
// on, a local port in use, a port of the host in use: one line, exit 1,
// and the lab goes on.
func TestSocketBadInput(t *testing.T) {
	d := twoLans(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, busyPort, _ := net.SplitHostPort(busy.Addr().String())
	pf := d.background(t, "expose", "h2:8080", "--to", busy.Addr().String())
	pf.line(`Exposing h2:8080`)
	before := d.ok("get", "hosts", "-o", "yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"port-forward", "h9", "80"}, `host "h9" not found`},
		{[]string{"port-forward", "h2", "0:81"}, "connect to 10.0.2.10:81: connection refused"},
		{[]string{"port-forward", "h2", busyPort + ":80"}, "cannot listen on 127.0.0.1:" + busyPort + ": address already in use"},
		{[]string{"port-forward", "h2", "80:http"}, `port "http" in "80:http" is not a port number`},
		{[]string{"port-forward", "h2"}, "needs HOST and at least one"},
		{[]string{"socks", "h9"}, `host "h9" not found`},
		{[]string{"socks", "h1", "--listen", busy.Addr().String()}, "address already in use"},
		{[]string{"expose", "h9:80", "--to", busy.Addr().String()}, `host "h9" not found`},
		{[]string{"expose", "h2:8080", "--to", busy.Addr().String()}, "port 8080 of host h2 is in use"},
		{[]string{"expose", "h2:80", "--to", "127.0.0.1:1"}, "--to 127.0.0.1:1: nothing answers: connection refused"},
		{[]string{"expose", "h2:99999", "--to", busy.Addr().String()}, `port "99999" in "h2:99999" is not a port number`},
		{[]string{"expose", "h2:80"}, "--to ADDRESS:PORT is required"},
	} {
		out, errs, code := d.labctl(tc.args...)
		if code != 1 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("labctl %s: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", strings.Join(tc.args, " "), code, out, errs, tc.want)
		}
	}
	if after := d.ok("get", "hosts", "-o", "yaml"); after != before {
		t.Errorf("the lab changed:\n%s\n---\n%s", before, after)
	}
	d.waitPing("h1", "h2")
	pf.interrupt()
}

// TestSocketsForwarded: labd a is the front door of a lab that runs on
// labd b; port-forward, socks and expose through a reach b's hosts (the
// streams are forwarded one hop).
func TestSocketsForwarded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two labd processes")
	}
	dir := t.TempDir()
	a, b := startTwoNodes(t, dir)
	topo, err := os.ReadFile(examples(t, "two-lans.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hosts := strings.Index(string(topo), "\nhosts:")
	onB := string(topo)[:hosts] + strings.ReplaceAll(string(topo)[hosts:], "  - name: ", "  - node: b\n    name: ")
	f := filepath.Join(dir, "on-b.yaml")
	os.WriteFile(f, []byte(onB), 0o644)
	b.ok("apply", "-f", f)
	a.waitPing("h1", "h2") // once a has the lab
	if out := a.ok("get", "hosts", "h2", "-o", "json"); !strings.Contains(out, `"node": "b"`) {
		t.Fatalf("h2 is not on b:\n%s", out)
	}

	pf := a.background(t, "port-forward", "h2", ":80")
	web := pf.line(`Forwarding from (127\.0\.0\.1:\d+) -> h2:80`)[1]
	if body := curl(t, "http://"+web+"/bytes/3000000"); len(body) != 3000000 {
		t.Errorf("curl through port-forward via a: %d bytes", len(body))
	}
	p := a.background(t, "socks", "h1", "--listen", "127.0.0.1:0")
	proxy := p.line(`SOCKS5 proxy on (127\.0\.0\.1:\d+)`)[1]
	if page := string(curl(t, "--socks5-hostname", proxy, "http://h2/")); !strings.Contains(page, "You are 10.0.1.10") {
		t.Errorf("socks via a:\n%s", page)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "real") })}
	go srv.Serve(l)
	defer srv.Close()
	e := a.background(t, "expose", "h2:8080", "--to", l.Addr().String())
	e.line(`Exposing h2:8080`)
	if out := a.ok("fetch", "h1", "http://h2:8080/"); out != "real" {
		t.Errorf("fetch through expose via a: %q", out)
	}
	for _, p := range []*bg{pf, p, e} {
		p.interrupt()
	}
}
