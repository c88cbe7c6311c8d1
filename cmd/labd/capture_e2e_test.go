package main_test

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/format/capture"
)

// startCapture runs labctl capture against d in the background and returns
// once the capture has started (labctl said "capturing on"); wait returns
// its stdout and stderr when it has exited.
func startCapture(t *testing.T, d *labd, args ...string) (wait func() (string, string), cmd *exec.Cmd) {
	t.Helper()
	cmd = d.labctlCommand(context.Background(), append([]string{"capture"}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outc := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stdout); outc <- string(b) }()
	var errs strings.Builder
	sc := bufio.NewScanner(stderr)
	started := false
	for sc.Scan() {
		errs.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "capturing on") {
			started = true
			break
		}
	}
	if !started {
		cmd.Wait()
		t.Fatalf("labctl capture %v did not start:\n%s", args, errs.String())
	}
	errc := make(chan string, 1)
	go func() {
		rest, _ := io.ReadAll(stderr)
		errc <- errs.String() + string(rest)
	}()
	return func() (string, string) {
		out, e := <-outc, <-errc
		if err := cmd.Wait(); err != nil {
			t.Fatalf("labctl capture %v: %v\n%s", args, err, e)
		}
		return out, e
	}, cmd
}

// TestCaptureAcrossNodes: capturing a network whose interfaces live on two
// labd processes yields one pcapng file with the interfaces of both, in
// time order, that tshark reads cleanly; the same file draws as a ladder.
func TestCaptureAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two labd processes")
	}
	dir := t.TempDir()
	a, b := startTwoNodes(t, dir)
	topo, err := os.ReadFile(examples(t, "two-lans.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pinned := strings.NewReplacer(
		"  - name: r1\n", "  - name: r1\n    node: a\n",
		"  - name: h1\n", "  - name: h1\n    node: a\n",
		"  - name: h2\n", "  - name: h2\n    node: b\n",
	).Replace(string(topo))
	f := filepath.Join(dir, "lab.yaml")
	os.WriteFile(f, []byte(pinned), 0o644)
	a.ok("apply", "-f", f)
	a.waitPing("h1", "h2")

	// lan2 is r1:eth1 on node a and h2:eth0 on node b.
	pcap := filepath.Join(dir, "lan2.pcapng")
	wait, _ := startCapture(t, a, "net/lan2", "-w", pcap, "--duration", "3s", "--proto", "tcp")
	a.ok("fetch", "h1", "http://h2/bytes/200000", "-O", filepath.Join(dir, "body"))
	_, errs := wait()
	if !strings.Contains(errs, "packets captured") {
		t.Errorf("labctl capture's report:\n%s", errs)
	}

	file, err := os.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r := capture.NewReader(file)
	described := map[string]bool{}
	r.OnInterface = func(name string, _ []netip.Addr) { described[name] = true }
	perIface := map[string]int{}
	var last time.Time
	n := 0
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if p.Time.Before(last) {
			t.Errorf("packet %d at %v comes after one at %v", n, p.Time, last)
		}
		last = p.Time
		perIface[p.Iface]++
	}
	if !described["r1:eth1"] || !described["h2:eth0"] || perIface["r1:eth1"] == 0 || perIface["h2:eth0"] == 0 {
		t.Fatalf("interfaces described %v, packets per interface %v: want both nodes' (r1:eth1 on a, h2:eth0 on b); labctl capture said:\n%s\nb's log:\n%s", described, perIface, errs, lastLines(b.log.String(), 30)+"\na's log:\n"+lastLines(a.log.String(), 40))
	}
	// Every segment crossed both interfaces: each saw it once.
	if perIface["r1:eth1"] != perIface["h2:eth0"] {
		t.Errorf("packets per interface %v: want the same on both ends of lan2", perIface)
	}
	if _, err := exec.LookPath("tshark"); err == nil {
		// Each segment is in the file twice (it crossed both interfaces):
		// TCP reassembly would see overlapping data, so it is off here and
		// every packet is dissected on its own.
		out, err := exec.Command("tshark", "-n", "-r", pcap, "-o", "tcp.desegment_tcp_streams:FALSE", "-Y", "_ws.malformed", "-T", "fields", "-e", "frame.number").Output()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("tshark: %v, malformed frames: %q", err, out)
		}
	}
	ladder := a.ok("capture", "--ladder", "-r", pcap)
	if !strings.Contains(ladder, "TCP ") || !strings.Contains(ladder, "SYN seq=0") || !strings.Contains(ladder, "FIN,ACK") {
		t.Errorf("ladder of the saved capture:\n%s", ladder)
	}
	for _, line := range strings.Split(ladder, "\n") {
		if len(line) > 100 {
			t.Errorf("ladder line of %d columns: %q", len(line), line)
		}
	}

	// -c ends a capture that spans both nodes (the peers' streams end too).
	wait, _ = startCapture(t, a, "net/lan2", "--proto", "icmp", "-c", "4")
	a.ok("ping", "h1", "h2", "-c", "2", "-i", "0.2")
	if out, errs := wait(); strings.Count(out, "\n") != 4 || !strings.Contains(errs, "4 packets captured") {
		t.Errorf("capture -c 4 of net/lan2:\n%s%s", out, errs)
	}

	// -w - streams pcapng on stdout (for wireshark -k -i -).
	wait, _ = startCapture(t, b, "h1", "--proto", "icmp", "-c", "4", "-w", "-")
	a.ok("ping", "h1", "h2", "-c", "2", "-i", "0.2")
	out, _ := wait()
	r = capture.NewReader(strings.NewReader(out))
	for i := range 5 {
		p, err := r.Next()
		if i == 4 && err != io.EOF || i < 4 && (err != nil || p.Iface != "h1:eth0") {
			t.Fatalf("pcapng from -w -, packet %d: %v, %v", i, p, err)
		}
	}

	// Live decode through the other node, until Ctrl-C.
	wait, cmd := startCapture(t, b, "h1", "--proto", "icmp")
	a.ok("ping", "h1", "h2", "-c", "2", "-i", "0.2")
	cmd.Process.Signal(os.Interrupt)
	out, errs = wait()
	if strings.Count(out, "ICMP echo request") != 2 || strings.Count(out, "ICMP echo reply") != 2 || !strings.Contains(errs, "4 packets captured") {
		t.Errorf("live decode of two pings, stopped by Ctrl-C:\n%s%s", out, errs)
	}

	// Bad input, through the other node: one line, non-zero exit.
	for _, args := range [][]string{{"capture", "h9"}, {"capture", "h1:eth9"}, {"capture", "net/lan9"}, {"capture", "h1", "--proto", "sctp"}, {"capture"}} {
		out, errs, code := b.labctl(args...)
		if code == 0 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.HasPrefix(errs, "error: ") {
			t.Errorf("labctl %v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}

	// With b gone, a capture of lan2 captures r1:eth1 on a and names
	// h2:eth0 as not captured; a capture of h2 itself fails.
	b.stop(syscall.SIGKILL)
	out, errs, code := a.labctl("capture", "net/lan2", "--duration", "1s")
	if code != 0 || !strings.Contains(errs, "capturing on r1:eth1\n") || !strings.Contains(errs, "not captured: h2:eth0 (node b ") {
		t.Errorf("capture of net/lan2 with b gone: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	t.Logf("capture of net/lan2 with b gone:\n%s", errs)
	if _, errs, code := a.labctl("capture", "h2", "--duration", "1s"); code == 0 || !strings.Contains(errs, "node b") {
		t.Errorf("capture of h2 with b gone: exit %d, stderr %q", code, errs)
	}
}
