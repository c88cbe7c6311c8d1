package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeAll(t *testing.T, w io.Writer, pkts []Packet) {
	t.Helper()
	pw, err := NewWriter(w, 0)
	must(t, err)
	for i := range pkts {
		must(t, pw.WritePacket(&pkts[i]))
	}
	must(t, pw.Flush())
}

// TestPcapngRoundTrip: what the writer writes, the reader reads back:
// interfaces, directions, nanosecond times, bytes and drop comments.
func TestPcapngRoundTrip(t *testing.T) {
	pkts := tcpSession(t, "h1:eth0", "r1:eth0", "r1:eth1", "h2:eth0")
	var buf bytes.Buffer
	writeAll(t, &buf, pkts)
	r := NewReader(&buf)
	for i := range pkts {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		want := pkts[i]
		if !got.Time.Equal(want.Time) || got.Iface != want.Iface || got.Dir != want.Dir ||
			!bytes.Equal(got.Data, want.Data) || got.Drop != want.Drop || got.Note != want.Note {
			t.Fatalf("packet %d: read %+v, wrote %+v", i, got, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last packet: %v, want EOF", err)
	}
	if _, err := NewReader(strings.NewReader("not a capture")).Next(); !errors.Is(err, ErrNotPcapng) {
		t.Errorf("text: %v, want ErrNotPcapng", err)
	}
}

// TestTshark: tshark reads the session captured on h1:eth0 with no
// malformed packets, names the interface, shows the drop comment, and its
// TCP analysis finds exactly the one retransmission there was.
func TestTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed (.ci/run installs it)")
	}
	pkts := tcpSession(t, "h1:eth0")
	path := filepath.Join(t.TempDir(), "session.pcapng")
	f, err := os.Create(path)
	must(t, err)
	writeAll(t, f, pkts)
	must(t, f.Close())

	tshark := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("tshark", append([]string{"-n", "-r", path}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		// tshark warns when run as root; anything else on stderr is an error.
		var complaints []string
		for line := range strings.Lines(stderr.String()) {
			if !strings.HasPrefix(line, "Running as user") {
				complaints = append(complaints, line)
			}
		}
		if err != nil || len(complaints) > 0 {
			t.Fatalf("tshark %v: %v\n%s", args, err, strings.Join(complaints, ""))
		}
		return strings.TrimSpace(string(out))
	}
	if n := len(strings.Split(tshark(), "\n")); n != len(pkts) {
		t.Errorf("tshark read %d packets, we wrote %d", n, len(pkts))
	}
	if m := tshark("-Y", "_ws.malformed || _ws.expert.severity == error"); m != "" {
		t.Errorf("malformed or erroneous packets:\n%s", m)
	}
	if ifs := tshark("-T", "fields", "-e", "frame.interface_name"); strings.Trim(strings.ReplaceAll(ifs, "h1:eth0", ""), "\n") != "" {
		t.Errorf("interface names:\n%s", ifs)
	}
	retrans := tshark("-Y", "tcp.analysis.retransmission", "-T", "fields", "-e", "tcp.seq", "-e", "tcp.len")
	if retrans != "1001\t1000" {
		t.Errorf("retransmissions found (relative seq, len): %q, want the one of seq 1001, 1000 bytes", retrans)
	}
	comments := tshark("-Y", "frame.comment", "-T", "fields", "-e", "tcp.seq", "-e", "frame.comment")
	if comments != "1001\tdropped: impairment loss" {
		t.Errorf("comments: %q", comments)
	}
	fins := tshark("-Y", "tcp.flags.fin == 1", "-T", "fields", "-e", "ip.src")
	if fins != "10.0.1.10\n10.0.2.10" {
		t.Errorf("FINs from %q, want both ends", fins)
	}
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	pw, _ := NewWriter(&buf, 0)
	data := make([]byte, 40)
	data[0] = 0x45
	_ = pw.WritePacket(&Packet{Iface: "h1:eth0", Dir: Out, Data: data, Drop: "impairment loss", Note: "corrupted"})
	_ = pw.Flush()
	f.Add(buf.Bytes())
	f.Add([]byte{})
	// An ICMPv6 message shorter than its header.
	short := make([]byte, 40+4)
	short[0], short[5], short[6] = 0x60, 4, 58
	var buf2 bytes.Buffer
	pw2, _ := NewWriter(&buf2, 0)
	_ = pw2.WritePacket(&Packet{Iface: "h1:eth0", Dir: In, Data: short})
	_ = pw2.Flush()
	f.Add(buf2.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b))
		dc := NewDecoder()
		l := NewLadder()
		for range 1000 {
			p, err := r.Next()
			if err != nil {
				return
			}
			dc.Line(p)
			l.Add(p)
		}
		l.Render()
	})
}

// FuzzDecode feeds packets straight to the decoder, the filter and the
// ladder (FuzzReader has to get through pcapng first).
func FuzzDecode(f *testing.F) {
	for _, p := range tcpSessionSeeds {
		f.Add(p)
	}
	f.Add([]byte{0x60, 0, 0, 0, 0, 4, 58, 64})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		dc := NewDecoder()
		l := NewLadder()
		flt := Filter{Proto: "tcp", Port: 80}
		for _, dir := range []Dir{Out, In} {
			p := &Packet{Iface: "h1:eth0", Dir: dir, Data: pkt}
			dc.Line(p)
			l.Add(p)
			flt.Match(pkt)
		}
		l.Render()
	})
}

// tcpSessionSeeds are IP packets of several kinds for FuzzDecode.
var tcpSessionSeeds = [][]byte{
	// IPv4 TCP SYN 10.0.1.10:40000 -> 10.0.2.10:80 with MSS and SACK-permitted.
	{0x45, 0, 0, 48, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 1, 10, 10, 0, 2, 10,
		0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x70, 0x02, 0xff, 0xff, 0, 0, 0, 0,
		2, 4, 5, 0x50, 4, 2, 1, 1},
	// IPv4 ICMP time exceeded quoting a UDP header.
	{0x45, 0, 0, 56, 0, 2, 0, 0, 64, 1, 0, 0, 10, 0, 1, 1, 10, 0, 1, 10,
		11, 0, 0, 0, 0, 0, 0, 0,
		0x45, 0, 0, 28, 0, 3, 0, 0, 1, 17, 0, 0, 10, 0, 1, 10, 10, 0, 2, 10,
		0x9c, 0x40, 0, 53, 0, 8, 0, 0},
}
