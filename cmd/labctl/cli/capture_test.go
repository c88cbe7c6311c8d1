package cli

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/format/capture"
	"github.com/labnet-dev/labnet/stack/wire"
)

// writeTestCapture writes a pcapng of a TCP handshake seen at h1:eth0 with
// the third packet lost, and returns its path.
func writeTestCapture(t *testing.T) string {
	t.Helper()
	h1, h2 := netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("10.0.2.10")
	seg := func(src, dst netip.Addr, sport, dport uint16, seq, ack uint32, flags uint8) []byte {
		h := wire.TCPHeader{SrcPort: sport, DstPort: dport, Seq: seq, Ack: ack, Flags: flags, Window: 65535}
		tcp := make([]byte, h.HeaderLen())
		h.Encode(tcp)
		wire.TCP(tcp).SetChecksum(src, dst)
		ip := wire.IPv4Header{TTL: 64, Protocol: wire.ProtoTCP, Src: src, Dst: dst}
		pkt := make([]byte, wire.IPv4MinHeaderLen+len(tcp))
		ip.Encode(pkt, len(tcp))
		copy(pkt[wire.IPv4MinHeaderLen:], tcp)
		return pkt
	}
	t0 := time.Unix(1700000000, 0)
	pkts := []capture.Packet{
		{Time: t0, Iface: "h1:eth0", Dir: capture.Out, Data: seg(h1, h2, 40000, 80, 1000, 0, wire.TCPFlagSYN)},
		{Time: t0.Add(time.Millisecond), Iface: "h1:eth0", Dir: capture.In, Data: seg(h2, h1, 80, 40000, 5000, 1001, wire.TCPFlagSYN|wire.TCPFlagACK)},
		{Time: t0.Add(2 * time.Millisecond), Iface: "h1:eth0", Dir: capture.Out, Data: seg(h1, h2, 40000, 80, 1001, 5001, wire.TCPFlagACK), Drop: "impairment loss"},
		{Time: t0.Add(3 * time.Millisecond), Iface: "h1:eth0", Dir: capture.Out, Data: seg(h1, h2, 40000, 80, 1001, 5001, wire.TCPFlagACK|wire.TCPFlagFIN)},
	}
	path := filepath.Join(t.TempDir(), "c.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := capture.NewWriter(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.AddInterface("h1:eth0", "", h1)
	for i := range pkts {
		w.WritePacket(&pkts[i])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// TestCaptureReadFile: -r decodes and draws a saved capture without a
// server; the filter and -c apply to it too.
func TestCaptureReadFile(t *testing.T) {
	path := writeTestCapture(t)
	ctx := context.Background()
	r := runCLI(ctx, "127.0.0.1:1", "", []string{"capture", "--ladder", "-r", path})
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	checkGolden(t, "capture_ladder", r.stdout)

	r = runCLI(ctx, "127.0.0.1:1", "", []string{"capture", "-r", path, "-c", "3"})
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.Contains(lines[2], "-- DROPPED (impairment loss)") || !strings.Contains(lines[1], "Flags [S.], seq 0, ack 1") {
		t.Errorf("decode of 3 packets (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(ctx, "127.0.0.1:1", "", []string{"capture", "-r", path, "--proto", "udp"})
	if r.code != 0 || r.stdout != "" {
		t.Errorf("--proto udp kept TCP packets: %q", r.stdout)
	}
}

func TestCaptureBadInput(t *testing.T) {
	path := writeTestCapture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"capture"}, "error: name at least one TARGET (HOST, HOST:IFACE or net/NETWORK)\n"},
		{[]string{"capture", "h1", "-r", path}, "error: -r reads a file: give no TARGET\n"},
		{[]string{"capture", "-r", path, "-w", "x"}, "error: -r and -w cannot be used together\n"},
		{[]string{"capture", "-r", path, "--proto", "sctp"}, "error: --proto: protocol \"sctp\": want tcp, udp or icmp\n"},
		{[]string{"capture", "-r", path, "--port", "70000"}, "error: --port: 70000 is not a port\n"},
		{[]string{"capture", "-r", path, "--host", "10.0.0"}, "error: --host: \"10.0.0\" is not an IP address\n"},
		{[]string{"capture", "-r", filepath.Join(t.TempDir(), "none")}, ""},
		{[]string{"capture", "-r", "capture_test.go"}, "error: capture_test.go: not a pcapng file\n"},
	} {
		r := runCLI(ctx, "127.0.0.1:1", "", tc.args)
		if r.code == 0 || (tc.want != "" && r.stderr != tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
