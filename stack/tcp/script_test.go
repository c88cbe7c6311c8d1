package tcp

// Scripted TCP tests in the spirit of packetdrill: a script injects segments
// from a fake peer, expects the segments our stack sends, calls the socket
// API and moves a virtual clock. Every script in testdata/*.pkt runs as a
// subtest of TestScripts.
//
// The setup: one stack.Stack on a vclock.Clock with one interface eth0
// (10.0.0.1/24 and fd00::1/64, MTU 1500) whose Link queues every packet the
// stack sends; TCP from New(stack, Options); the peer is 10.0.0.2 (fd00::2
// with "option ipv6"), and its segments go in through Stack.Deliver. Only
// the public surface is used (Listen, Dial, Conn, Connections).
//
// # Format
//
// One command per line; '#' starts a comment. Before the first timed line,
// option lines set up the stack:
//
//	option cc=newreno minrto=100ms timewait=10s delack=40ms rcvbuf=4096 sndbuf=65536
//	option nosack nots nowscale notlp mtu=1280 ipv6 peer_isn=4294967000 peer_port=40000
//
// Every other line starts with a time: "+D" is D after the previous line,
// "D" is D after the start of the script; D is in seconds ("+.2", "1.5") or
// a Go duration ("+40ms"). The harness first advances the virtual clock to
// that time, firing every timer that falls due, then runs the line:
//
//	< FLAGS START:END(LEN) [ack N] [win N] [<OPTIONS>]
//	    inject a segment from the peer. FLAGS are S (SYN), F (FIN), R (RST),
//	    P (PSH) and '.' (ACK), e.g. "S.", "P.", "F.". START, END and ack
//	    are relative: the peer's sequence numbers to its ISN (peer_isn), ack
//	    to our ISS (absolute until our ISS is known). LEN bytes of data
//	    are sent (END must be START+LEN); a
//	    SYN or FIN does not count in LEN. win is the raw 16-bit field
//	    (65535 when absent). OPTIONS are laid out in the order written.
//	> FLAGS START:END(LEN) [ack N] [win N] [<OPTIONS>]
//	    the next segment our stack sent must be this one, sent at exactly
//	    this time (earlier or later fails). START is relative to our ISS,
//	    ack to the peer's ISN; our ISS is learned from the first SYN we send.
//	    ack, win and <OPTIONS> are checked only when given; "<>" means no
//	    options. Any number in a '>' line may be '*'. The data must be the
//	    bytes the application wrote for those sequence numbers.
//	> none
//	    nothing has been sent (and not yet consumed) by this time.
//
// A packet the script has not consumed when time moves past the instant it
// was sent fails the script, as does one left at the end.
//
// OPTIONS is a comma-separated list of: nop, eol, mss N, wscale N, sackOK,
// TS val N ecr N (absolute values, as timestamps are; in a '<' line "ecr *"
// echoes the TS val of the last segment a '>' line matched), and sack L:R
// [L:R...] (relative: to our ISS in '<' lines, to the peer's ISN in '>'
// lines). Injected options are padded with eol to a multiple of 4 bytes.
//
// Socket calls run on their own goroutine and must return within a
// real-time bound (they must not need anything later in the script); they
// see only virtual time:
//
//	listen PORT              Listen on 0.0.0.0:PORT (the peer uses port 40000)
//	accept                   Accept one connection
//	connect ADDR:PORT        start Dial; returns once the SYN is sent
//	await-connect [= ERR]    the Dial's result
//	write N [= ERR]          write N bytes
//	read N                   read exactly N bytes (checked against what the peer sent)
//	read = ERR               a Read fails with ERR
//	close | shutdown-write | shutdown-read | close-listener
//	nodelay                  SetNoDelay(true)
//	keepalive DUR            SetKeepAlivePeriod(DUR)
//	state NAME               the connection's state (RFC 9293 names; CLOSED when gone)
//	batch | end-batch        Protocol.BeginBatch / EndBatch: the segments between arrive as one batch
//
// ERR is EOF, ECONNRESET, ECONNREFUSED, ETIMEDOUT, EPIPE or ECLOSED (net.ErrClosed).
//
// Data: the byte at relative sequence number n of either side's stream is
// byte(n % 251), so misplaced or stale retransmitted bytes are caught in
// both directions.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/vclock"
	"github.com/labnet-dev/labnet/stack/wire"
)

// scriptCallTimeout bounds, in real time, a socket call of a script. It only
// catches calls that block; it never shapes what the stack does.
const scriptCallTimeout = 5 * time.Second

func TestScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.pkt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts in testdata")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".pkt"), func(t *testing.T) {
			t.Parallel()
			runScript(t, f)
		})
	}
}

// scriptPacket is one packet the stack sent and when (since the start).
type scriptPacket struct {
	at  time.Duration
	pkt []byte
}

// scriptLink is the interface's Link: it queues what the stack sends.
type scriptLink struct {
	clock *vclock.Clock
	mu    sync.Mutex
	queue []scriptPacket
	sent  chan struct{} // signalled on every Send
}

func (l *scriptLink) Send(nextHop netip.Addr, pkt []byte) error {
	at := l.clock.Now().Sub(vclock.Epoch)
	l.mu.Lock()
	l.queue = append(l.queue, scriptPacket{at, pkt})
	l.mu.Unlock()
	select {
	case l.sent <- struct{}{}:
	default:
	}
	return nil
}

func (l *scriptLink) peek() (scriptPacket, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) == 0 {
		return scriptPacket{}, false
	}
	return l.queue[0], true
}

func (l *scriptLink) pop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queue = l.queue[1:]
}

type dialResult struct {
	c   *Conn
	err error
}

// script is one running script.
type script struct {
	t    testing.TB
	file string
	line int

	// Set up by option lines.
	opts     Options
	mtu      int
	ipv6     bool
	peerISN  uint32
	peerPort uint16

	clock         *vclock.Clock
	link          *scriptLink
	s             *stack.Stack
	nic           *stack.NIC
	p             *Protocol
	local, remote netip.Addr
	localPort     uint16 // 0 until known

	now      time.Duration // the script's time
	iss      uint32        // our ISS, once issKnown
	issKnown bool
	tsVal    uint32 // the TS val of the last segment matched by a '>' line

	ln      *Listener
	conn    *Conn
	dial    chan dialResult // a Dial in progress
	written int             // bytes the application wrote
	read    int             // bytes the application read
}

func runScript(t testing.TB, file string) {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := &script{t: t, file: file, mtu: 1500, peerISN: 1_000_000_000, peerPort: 40000}
	for i, text := range strings.Split(string(src), "\n") {
		s.line = i + 1
		if j := strings.IndexByte(text, '#'); j >= 0 {
			text = text[:j]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(text, "option "); ok {
			if s.s != nil {
				s.fatalf("option after the first timed line")
			}
			s.option(rest)
			continue
		}
		if s.s == nil {
			s.start()
		}
		s.step(text)
	}
	if s.s == nil {
		s.fatalf("empty script")
	}
	s.line = 0
	if p, ok := s.link.peek(); ok {
		s.fatalf("unexpected packet at the end, sent at %v: %s", fmtTime(p.at), s.describe(p.pkt))
	}
}

func (s *script) fatalf(format string, args ...any) {
	s.t.Helper()
	where := s.file
	if s.line > 0 {
		where = fmt.Sprintf("%s:%d", s.file, s.line)
	}
	s.t.Fatalf("%s: %s", where, fmt.Sprintf(format, args...))
}

// option applies "key=value" and "flag" words of an option line.
func (s *script) option(rest string) {
	for _, w := range strings.Fields(rest) {
		k, v, _ := strings.Cut(w, "=")
		dur := func() time.Duration {
			d, err := time.ParseDuration(v)
			if err != nil {
				s.fatalf("option %s: %v", k, err)
			}
			return d
		}
		num := func() int {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				s.fatalf("option %s: %v", k, err)
			}
			return int(n)
		}
		switch k {
		case "cc":
			s.opts.CongestionControl = v
		case "minrto":
			s.opts.MinRTO = dur()
		case "timewait":
			s.opts.TimeWait = dur()
		case "delack":
			s.opts.DelayedAck = dur()
		case "rcvbuf":
			s.opts.ReceiveBuffer = num()
		case "sndbuf":
			s.opts.SendBuffer = num()
		case "nosack":
			s.opts.DisableSACK = true
		case "notlp":
			s.opts.DisableTLP = true
		case "nots":
			s.opts.DisableTimestamps = true
		case "nowscale":
			s.opts.DisableWindowScale = true
		case "mtu":
			s.mtu = num()
		case "ipv6":
			s.ipv6 = true
		case "peer_isn":
			s.peerISN = uint32(num())
		case "peer_port":
			s.peerPort = uint16(num())
		default:
			s.fatalf("unknown option %q", k)
		}
	}
}

// start builds the stack once the options are known.
func (s *script) start() {
	s.clock = vclock.New()
	s.link = &scriptLink{clock: s.clock, sent: make(chan struct{}, 1)}
	s.s = stack.New(stack.Config{Name: "script", Clock: s.clock})
	nic, err := s.s.AddInterface("eth0", s.mtu, s.link,
		netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64"))
	if err != nil {
		s.fatalf("%v", err)
	}
	s.nic = nic
	s.local, s.remote = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	if s.ipv6 {
		s.local, s.remote = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	}
	s.p = New(s.s, s.opts)
	s.t.Cleanup(s.p.Close)
}

// step runs one timed line.
func (s *script) step(text string) {
	ts, rest, _ := strings.Cut(text, " ")
	rest = strings.TrimSpace(rest)
	at := s.now
	rel := strings.HasPrefix(ts, "+")
	d := strings.TrimPrefix(ts, "+")
	if d != "" && d[len(d)-1] >= '0' && d[len(d)-1] <= '9' {
		d += "s"
	}
	dur, err := time.ParseDuration(d)
	if err != nil || dur < 0 {
		s.fatalf("bad time %q", ts)
	}
	if rel {
		at += dur
	} else {
		at = dur
	}
	if at < s.now {
		s.fatalf("time %v is before the previous line's %v", fmtTime(at), fmtTime(s.now))
	}
	s.now = at
	s.clock.AdvanceTo(vclock.Epoch.Add(at))
	s.t.Logf("%d: %v %s", s.line, fmtTime(at), rest)

	if p, ok := s.link.peek(); ok && p.at < s.now {
		if strings.HasPrefix(rest, "> ") && rest != "> none" {
			s.fatalf("packet sent at %v, expected at %v: %s", fmtTime(p.at), fmtTime(s.now), s.describe(p.pkt))
		}
		s.fatalf("unexpected packet sent at %v: %s", fmtTime(p.at), s.describe(p.pkt))
	}
	switch {
	case rest == "> none":
		if p, ok := s.link.peek(); ok {
			s.fatalf("expected nothing sent, got %s", s.describe(p.pkt))
		}
	case strings.HasPrefix(rest, "> "):
		s.expect(rest[2:])
	case strings.HasPrefix(rest, "< "):
		s.inject(rest[2:])
	default:
		s.call(rest)
	}
}

func fmtTime(d time.Duration) string { return fmt.Sprintf("%.6fs", d.Seconds()) }

// segSpec is a segment as a script line writes it.
type segSpec struct {
	flags          uint8
	start, length  int64
	startAny       bool
	ack            int64
	hasAck, ackAny bool
	win            int64
	hasWin, winAny bool
	opts           []string // one option per entry, e.g. "TS val * ecr 100"
	hasOpts        bool
}

const flagChars = "FSRPUEW."

var flagBits = [...]uint8{wire.TCPFlagFIN, wire.TCPFlagSYN, wire.TCPFlagRST, wire.TCPFlagPSH, wire.TCPFlagURG, wire.TCPFlagECE, wire.TCPFlagCWR, wire.TCPFlagACK}

func flagString(f uint8) string {
	var b strings.Builder
	for i, bit := range flagBits {
		if f&bit != 0 {
			b.WriteByte(flagChars[i])
		}
	}
	return b.String()
}

func (s *script) parseSeg(text string) segSpec {
	var sp segSpec
	if i := strings.IndexByte(text, '<'); i >= 0 {
		j := strings.LastIndexByte(text, '>')
		if j < i {
			s.fatalf("unterminated options in %q", text)
		}
		sp.hasOpts = true
		for _, o := range strings.Split(text[i+1:j], ",") {
			if o = strings.Join(strings.Fields(o), " "); o != "" {
				sp.opts = append(sp.opts, o)
			}
		}
		if strings.TrimSpace(text[j+1:]) != "" {
			s.fatalf("text after the options in %q", text)
		}
		text = text[:i]
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		s.fatalf("segment needs FLAGS and START:END(LEN): %q", text)
	}
	for _, c := range f[0] {
		i := strings.IndexRune(flagChars, c)
		if i < 0 {
			s.fatalf("unknown flag %q", c)
		}
		sp.flags |= flagBits[i]
	}
	num := func(w string) (int64, bool) {
		if w == "*" {
			return 0, true
		}
		n, err := strconv.ParseInt(w, 10, 64)
		if err != nil {
			s.fatalf("bad number %q", w)
		}
		return n, false
	}
	// START:END(LEN)
	se, l, ok := strings.Cut(f[1], "(")
	if !ok || !strings.HasSuffix(l, ")") {
		s.fatalf("want START:END(LEN), got %q", f[1])
	}
	st, en, ok := strings.Cut(se, ":")
	if !ok {
		s.fatalf("want START:END(LEN), got %q", f[1])
	}
	sp.start, sp.startAny = num(st)
	end, _ := num(en)
	sp.length, _ = num(strings.TrimSuffix(l, ")"))
	if !sp.startAny && end != sp.start+sp.length {
		s.fatalf("%s: END is not START+LEN", f[1])
	}
	for i := 2; i < len(f); i += 2 {
		if i+1 >= len(f) {
			s.fatalf("%q needs a value", f[i])
		}
		switch f[i] {
		case "ack":
			sp.ack, sp.ackAny = num(f[i+1])
			sp.hasAck = true
		case "win":
			sp.win, sp.winAny = num(f[i+1])
			sp.hasWin = true
		default:
			s.fatalf("unknown segment field %q", f[i])
		}
	}
	return sp
}

// pattern is the byte at relative sequence number n of either stream.
func pattern(n int64) byte { return byte(uint64(n) % 251) }

func patternBytes(start int64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = pattern(start + int64(i))
	}
	return b
}

// inject sends a segment from the peer.
func (s *script) inject(text string) {
	sp := s.parseSeg(text)
	if sp.startAny || sp.ackAny || sp.winAny {
		s.fatalf("'*' in an injected segment")
	}
	if s.localPort == 0 {
		s.fatalf("injecting before our port is known (listen or connect first)")
	}
	opts := s.encodeOptions(sp.opts)
	h := wire.TCPHeader{
		SrcPort: s.peerPort, DstPort: s.localPort,
		Seq:   s.peerISN + uint32(sp.start),
		Flags: sp.flags, Window: 65535,
	}
	if sp.hasAck {
		h.Ack = uint32(sp.ack)
		if s.issKnown {
			h.Ack += s.iss
		}
	}
	if sp.hasWin {
		h.Window = uint16(sp.win)
	}
	hl := wire.TCPMinHeaderLen + len(opts)
	if hl > wire.TCPMaxHeaderLen {
		s.fatalf("options too long: %d bytes", len(opts))
	}
	seg := make([]byte, hl+int(sp.length))
	h.Encode(seg) // no options in h: writes the fixed header
	seg[12] = uint8(hl/4) << 4
	copy(seg[wire.TCPMinHeaderLen:], opts)
	copy(seg[hl:], patternBytes(sp.start, int(sp.length)))
	wire.TCP(seg).SetChecksum(s.remote, s.local)
	var pkt []byte
	if s.ipv6 {
		ip := wire.IPv6Header{NextHeader: wire.ProtoTCP, HopLimit: 64, Src: s.remote, Dst: s.local}
		pkt = ip.Marshal(seg)
	} else {
		ip := wire.IPv4Header{TTL: 64, Protocol: wire.ProtoTCP, Src: s.remote, Dst: s.local}
		pkt = ip.Marshal(seg)
	}
	s.s.Deliver(s.nic, pkt)
}

// encodeOptions lays the options out as written, padded with EOL to a
// multiple of 4 bytes.
func (s *script) encodeOptions(opts []string) []byte {
	var b []byte
	u := func(w string, bits int) uint64 {
		n, err := strconv.ParseUint(w, 10, bits)
		if err != nil {
			s.fatalf("bad option value %q", w)
		}
		return n
	}
	for _, o := range opts {
		w := strings.Fields(o)
		switch {
		case o == "nop":
			b = append(b, wire.TCPOptNOP)
		case o == "eol":
			b = append(b, wire.TCPOptEnd)
		case o == "sackOK":
			b = append(b, wire.TCPOptSACKPermitted, 2)
		case w[0] == "mss" && len(w) == 2:
			m := u(w[1], 16)
			b = append(b, wire.TCPOptMSS, 4, byte(m>>8), byte(m))
		case w[0] == "wscale" && len(w) == 2:
			b = append(b, wire.TCPOptWindowScale, 3, byte(u(w[1], 8)))
		case w[0] == "TS" && len(w) == 5 && w[1] == "val" && w[3] == "ecr":
			b = append(b, wire.TCPOptTimestamps, 10)
			b = appendU32(b, uint32(u(w[2], 32)))
			if w[4] == "*" {
				b = appendU32(b, s.tsVal)
			} else {
				b = appendU32(b, uint32(u(w[4], 32)))
			}
		case w[0] == "sack" && len(w) >= 2:
			b = append(b, wire.TCPOptSACK, byte(2+8*(len(w)-1)))
			for _, blk := range w[1:] {
				l, r, ok := strings.Cut(blk, ":")
				if !ok {
					s.fatalf("bad SACK block %q", blk)
				}
				base := uint32(0)
				if s.issKnown {
					base = s.iss
				}
				b = appendU32(b, base+uint32(u(l, 32)))
				b = appendU32(b, base+uint32(u(r, 32)))
			}
		default:
			s.fatalf("unknown option %q", o)
		}
	}
	for len(b)%4 != 0 {
		b = append(b, wire.TCPOptEnd)
	}
	return b
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// ourSeg is a segment our stack sent.
type ourSeg struct {
	h       wire.TCPHeader
	opts    []byte
	payload []byte
}

// parseOurs checks one sent packet (IP and TCP headers, checksums,
// addresses and ports) and returns its segment.
func (s *script) parseOurs(pkt []byte) (ourSeg, error) {
	var src, dst netip.Addr
	var payload []byte
	if s.ipv6 {
		ip := wire.IPv6(pkt)
		if err := ip.Check(); err != nil {
			return ourSeg{}, fmt.Errorf("bad IPv6 packet: %v", err)
		}
		if ip.NextHeader() != wire.ProtoTCP {
			return ourSeg{}, fmt.Errorf("not TCP: next header %d", ip.NextHeader())
		}
		src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
	} else {
		ip := wire.IPv4(pkt)
		if err := ip.Check(); err != nil || !ip.ChecksumValid() {
			return ourSeg{}, fmt.Errorf("bad IPv4 packet (%v)", err)
		}
		if ip.Protocol() != wire.ProtoTCP {
			return ourSeg{}, fmt.Errorf("not TCP: protocol %d", ip.Protocol())
		}
		src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
	}
	if src != s.local || dst != s.remote {
		return ourSeg{}, fmt.Errorf("sent %v -> %v, want %v -> %v", src, dst, s.local, s.remote)
	}
	tcp := wire.TCP(payload)
	if err := tcp.Check(); err != nil {
		return ourSeg{}, fmt.Errorf("bad TCP header: %v", err)
	}
	if !tcp.ChecksumValid(src, dst) {
		return ourSeg{}, errors.New("bad TCP checksum")
	}
	h, data, _ := wire.ParseTCP(payload)
	if h.DstPort != s.peerPort || s.localPort != 0 && h.SrcPort != s.localPort {
		return ourSeg{}, fmt.Errorf("ports %d -> %d, want %d -> %d", h.SrcPort, h.DstPort, s.localPort, s.peerPort)
	}
	return ourSeg{h: h, opts: tcp.Options(), payload: data}, nil
}

// optionWords renders options as a script writes them, SACK blocks
// relative to base.
func optionWords(b []byte, base uint32) []string {
	var out []string
	for len(b) > 0 {
		switch b[0] {
		case wire.TCPOptEnd:
			if strings.Trim(string(b), "\x00") == "" {
				return out // padding
			}
			out = append(out, "eol")
			b = b[1:]
			continue
		case wire.TCPOptNOP:
			out = append(out, "nop")
			b = b[1:]
			continue
		}
		if len(b) < 2 || int(b[1]) < 2 || int(b[1]) > len(b) {
			return append(out, fmt.Sprintf("malformed % x", b))
		}
		n, body := int(b[1]), b[2:b[1]]
		u32 := func(p []byte) uint32 { return uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]) }
		switch {
		case b[0] == wire.TCPOptMSS && n == 4:
			out = append(out, fmt.Sprintf("mss %d", int(body[0])<<8|int(body[1])))
		case b[0] == wire.TCPOptWindowScale && n == 3:
			out = append(out, fmt.Sprintf("wscale %d", body[0]))
		case b[0] == wire.TCPOptSACKPermitted && n == 2:
			out = append(out, "sackOK")
		case b[0] == wire.TCPOptTimestamps && n == 10:
			out = append(out, fmt.Sprintf("TS val %d ecr %d", u32(body), u32(body[4:])))
		case b[0] == wire.TCPOptSACK && (n-2)%8 == 0:
			w := "sack"
			for i := 0; i+8 <= len(body); i += 8 {
				w += fmt.Sprintf(" %d:%d", int32(u32(body[i:])-base), int32(u32(body[i+4:])-base))
			}
			out = append(out, w)
		default:
			out = append(out, fmt.Sprintf("opt %d % x", b[0], body))
		}
		b = b[n:]
	}
	return out
}

// describe renders a packet we sent as a '>' line would write it.
func (s *script) describe(pkt []byte) string {
	seg, err := s.parseOurs(pkt)
	if err != nil {
		return fmt.Sprintf("%v: % x", err, pkt)
	}
	base := uint32(0)
	if s.issKnown {
		base = s.iss
	}
	start := int32(seg.h.Seq - base)
	d := fmt.Sprintf("%s %d:%d(%d)", flagString(seg.h.Flags), start, int64(start)+int64(len(seg.payload)), len(seg.payload))
	if seg.h.Flags&wire.TCPFlagACK != 0 {
		d += fmt.Sprintf(" ack %d", int32(seg.h.Ack-s.peerISN))
	}
	d += fmt.Sprintf(" win %d", seg.h.Window)
	if o := optionWords(seg.opts, s.peerISN); len(o) > 0 {
		d += " <" + strings.Join(o, ",") + ">"
	}
	return d
}

// expect matches the next packet we sent against a '>' line.
func (s *script) expect(text string) {
	sp := s.parseSeg(text)
	p, ok := s.link.peek()
	if !ok {
		s.fatalf("expected %s, nothing sent by %v", text, fmtTime(s.now))
	}
	seg, err := s.parseOurs(p.pkt)
	if err != nil {
		s.fatalf("%v", err)
	}
	if !s.issKnown && seg.h.Flags&wire.TCPFlagSYN != 0 && !sp.startAny {
		s.iss, s.issKnown = seg.h.Seq-uint32(sp.start), true
	}
	if s.localPort == 0 {
		s.localPort = seg.h.SrcPort
	}
	got := s.describe(p.pkt)
	s.t.Logf("   sent %s", got)
	bad := func(what string) {
		s.fatalf("%s differs:\n  want > %s\n  got  > %s", what, text, got)
	}
	if seg.h.Flags != sp.flags {
		bad("flags")
	}
	base := uint32(0)
	if s.issKnown {
		base = s.iss
	}
	if !sp.startAny && seg.h.Seq != base+uint32(sp.start) {
		bad("sequence number")
	}
	if int64(len(seg.payload)) != sp.length {
		bad("length")
	}
	if sp.hasAck && !sp.ackAny && seg.h.Ack != s.peerISN+uint32(sp.ack) {
		bad("ack")
	}
	if sp.hasWin && !sp.winAny && int64(seg.h.Window) != sp.win {
		bad("window")
	}
	if sp.hasOpts {
		gotOpts := optionWords(seg.opts, s.peerISN)
		if len(gotOpts) != len(sp.opts) {
			bad("options")
		}
		for i, w := range sp.opts {
			gw, ww := strings.Fields(gotOpts[i]), strings.Fields(w)
			if len(gw) != len(ww) {
				bad("options")
			}
			for j := range ww {
				if ww[j] != "*" && ww[j] != gw[j] {
					bad("options")
				}
			}
		}
	}
	if want := patternBytes(int64(seg.h.Seq-base), len(seg.payload)); string(seg.payload) != string(want) {
		s.fatalf("the data of %s is not what the application wrote", got)
	}
	var o wire.TCPOptions
	if wire.ParseTCPOptions(seg.opts, &o) && o.TimestampsOK {
		s.tsVal = o.TSVal
	}
	s.link.pop()
}

var scriptErrors = map[string]error{
	"EOF":          io.EOF,
	"ECONNRESET":   syscall.ECONNRESET,
	"ECONNREFUSED": syscall.ECONNREFUSED,
	"ETIMEDOUT":    syscall.ETIMEDOUT,
	"EPIPE":        syscall.EPIPE,
	"ECLOSED":      net.ErrClosed,
}

// run calls f on another goroutine and waits, in real time, for it to
// return: a socket call that would block fails the script instead of
// hanging it.
func (s *script) run(what string, f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(scriptCallTimeout):
		s.fatalf("%s blocked", what)
	}
}

// checkErr compares a call's error with the "= ERR" part of its line.
func (s *script) checkErr(what string, err error, want string) {
	if want == "" {
		if err != nil {
			s.fatalf("%s: %v", what, err)
		}
		return
	}
	target, ok := scriptErrors[want]
	if !ok {
		s.fatalf("unknown error %q", want)
	}
	if !errors.Is(err, target) {
		s.fatalf("%s: got error %v, want %s", what, err, want)
	}
}

// connection returns the connection, waiting for a Dial in progress.
func (s *script) connection() *Conn {
	if s.conn == nil && s.dial != nil {
		s.awaitConnect("")
	}
	if s.conn == nil {
		s.fatalf("no connection (accept or connect first)")
	}
	return s.conn
}

func (s *script) awaitConnect(want string) {
	if s.dial == nil {
		s.fatalf("no connect in progress")
	}
	var r dialResult
	dial := s.dial
	s.run("connect", func() { r = <-dial })
	s.dial = nil
	s.checkErr("connect", r.err, want)
	s.conn = r.c
}

// call runs a socket call line.
func (s *script) call(text string) {
	text, wantErr, _ := strings.Cut(text, "=")
	wantErr = strings.TrimSpace(wantErr)
	f := strings.Fields(text)
	if len(f) == 0 {
		s.fatalf("missing call")
	}
	arg := func() string {
		if len(f) != 2 {
			s.fatalf("%s takes one argument", f[0])
		}
		return f[1]
	}
	n := func() int {
		v, err := strconv.Atoi(arg())
		if err != nil || v < 0 {
			s.fatalf("%s: bad count %q", f[0], f[1])
		}
		return v
	}
	switch f[0] {
	case "listen":
		port, err := strconv.ParseUint(arg(), 10, 16)
		if err != nil {
			s.fatalf("bad port %q", f[1])
		}
		unspec := netip.IPv4Unspecified()
		if s.ipv6 {
			unspec = netip.IPv6Unspecified()
		}
		ln, err := s.p.Listen(netip.AddrPortFrom(unspec, uint16(port)))
		s.checkErr("listen", err, wantErr)
		s.ln, s.localPort = ln, uint16(port)
	case "accept":
		if s.ln == nil {
			s.fatalf("accept without listen")
		}
		var c *Conn
		var err error
		s.run("accept", func() { c, err = s.ln.AcceptTCP() })
		s.checkErr("accept", err, wantErr)
		s.conn = c
	case "close-listener":
		s.ln.Close()
	case "connect":
		ap, err := netip.ParseAddrPort(arg())
		if err != nil || ap.Addr() != s.remote {
			s.fatalf("connect: want %v:PORT, got %q", s.remote, f[1])
		}
		s.peerPort = ap.Port()
		s.dial = make(chan dialResult, 1)
		dial := s.dial
		select {
		case <-s.link.sent: // an old signal
		default:
		}
		go func() {
			c, err := s.p.Dial(context.Background(), ap)
			dial <- dialResult{c, err}
		}()
		// Dial returns once the handshake is over; wait only for its SYN.
		s.run("connect", func() {
			select {
			case <-s.link.sent:
			case r := <-dial:
				dial <- r
			}
		})
	case "await-connect":
		s.awaitConnect(wantErr)
	case "write":
		size := n()
		c := s.connection()
		var w int
		var err error
		s.run("write", func() { w, err = c.Write(patternBytes(int64(s.written+1), size)) })
		s.written += w
		s.checkErr("write", err, wantErr)
	case "read":
		c := s.connection()
		if len(f) == 1 {
			if wantErr == "" {
				s.fatalf("read needs a count or '= ERR'")
			}
			var got int
			var err error
			s.run("read", func() { got, err = c.Read(make([]byte, 1)) })
			if got > 0 {
				s.fatalf("read: got data, want %s", wantErr)
			}
			s.checkErr("read", err, wantErr)
			return
		}
		size := n()
		buf := make([]byte, size)
		got := 0
		var err error
		s.run("read", func() {
			for got < size && err == nil {
				var m int
				m, err = c.Read(buf[got:])
				got += m
			}
		})
		s.checkErr("read", err, wantErr)
		if string(buf[:got]) != string(patternBytes(int64(s.read+1), got)) {
			s.fatalf("read: the data differs from what the peer sent")
		}
		s.read += got
	case "close":
		c := s.connection()
		s.run("close", func() { c.Close() })
	case "shutdown-write":
		c := s.connection()
		s.run("shutdown-write", func() { c.CloseWrite() })
	case "shutdown-read":
		c := s.connection()
		s.run("shutdown-read", func() { c.CloseRead() })
	case "nodelay":
		c := s.connection()
		s.run("nodelay", func() { c.SetNoDelay(true) })
	case "keepalive":
		d, err := time.ParseDuration(arg())
		if err != nil {
			s.fatalf("keepalive: %v", err)
		}
		c := s.connection()
		s.run("keepalive", func() { c.SetKeepAlivePeriod(d) })
	case "batch":
		s.p.BeginBatch()
	case "end-batch":
		s.p.EndBatch()
	case "state":
		if got := s.state(); got != arg() {
			s.fatalf("state %s, want %s", got, f[1])
		}
	default:
		s.fatalf("unknown call %q", f[0])
	}
}

// state is the connection's state from Protocol.Connections.
func (s *script) state() string {
	if s.localPort == 0 {
		return stateClosed.String()
	}
	local := netip.AddrPortFrom(s.local, s.localPort)
	remote := netip.AddrPortFrom(s.remote, s.peerPort)
	for _, in := range s.p.Connections() {
		if in.Local == local && in.Remote == remote {
			return in.State
		}
	}
	return stateClosed.String()
}

// failTB is a testing.TB whose Fatalf records the message and ends the
// goroutine, so that a test can check that a script fails.
type failTB struct {
	testing.TB
	msg string
}

func (f *failTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *failTB) Logf(string, ...any) {}

// TestScriptHarnessFails checks that the harness is not vacuous: each
// script is wrong in one way and must fail with the expected message.
func TestScriptHarnessFails(t *testing.T) {
	const open = `
+0     listen 8080
+0     < S 0:0(0) win 65535 <mss 1000>
+0     > S. 0:0(0) ack 1 win 65535 <mss 1460>
+.1    < . 1:1(0) ack 1 win 65535
+0     accept
+0     write 100
+0     > P. 1:101(100) ack 1
`
	tests := []struct{ name, script, want string }{
		{"retransmission expected too early", "+.5 > P. 1:101(100) ack 1\n", "nothing sent by 0.600000s"},
		{"retransmission expected too late", "+1.5 > P. 1:101(100) ack 1\n", "packet sent at 1.100000s, expected at 1.600000s"},
		{"unexpected packet", "+2 < . 1:1(0) ack 101 win 65535\n", "unexpected packet sent at 1.100000s"},
		{"packet left at the end", "+1 state ESTABLISHED\n", "unexpected packet at the end"},
		{"something sent", "+1 > none\n", "expected nothing sent, got P. 1:101(100)"},
		{"flags", "+1 > . 1:101(100) ack 1\n", "flags differs"},
		{"sequence number", "+1 > P. 2:102(100) ack 1\n", "sequence number differs"},
		{"length", "+1 > P. 1:100(99) ack 1\n", "length differs"},
		{"ack", "+1 > P. 1:101(100) ack 2\n", "ack differs"},
		{"window", "+1 > P. 1:101(100) ack 1 win 1000\n", "window differs"},
		{"options", "+1 > P. 1:101(100) ack 1 <nop,nop,TS val * ecr 0>\n", "options differs"},
		{"no options", "+1 > P. 1:101(100) ack 1 <>\n+0 write 1 = EPIPE\n", "write: got error <nil>, want EPIPE"},
		{"state", "+0 state CLOSE-WAIT\n", "state ESTABLISHED, want CLOSE-WAIT"},
		{"read error", "+0 < F. 1:1(0) ack 101 win 65535\n+0 > . 101:101(0) ack 2\n+0 read = ECONNRESET\n", "got error EOF, want ECONNRESET"},
		{"syntax", "+0 > P. 1:102(100)\n", "END is not START+LEN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bad.pkt")
			if err := os.WriteFile(file, []byte(open+tc.script), 0o644); err != nil {
				t.Fatal(err)
			}
			f := &failTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				runScript(f, file)
			}()
			<-done
			if !strings.Contains(f.msg, tc.want) {
				t.Errorf("script failed with %q, want it to mention %q", f.msg, tc.want)
			}
		})
	}
}
