package capture

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

// Ladder draws flows as sequence diagrams: one column per endpoint, one
// arrow per packet with its flags, relative sequence and acknowledgement
// numbers and length, marked when it was retransmitted, duplicated, a
// duplicate ACK, or dropped (and where and why).
//
// A packet seen at several interfaces (the sender's, each router's, the
// receiver's) is one arrow; the routers it crossed are named in the
// flow's heading. Lines fit in Width columns.
type Ladder struct {
	// Width is the diagram's width in columns; 100 when zero.
	Width int

	hosts map[netip.Addr]string // address -> host, from AddInterface
	flows map[ladderKey]*flow
	order []*flow
	last  *flow // the flow of the last live line
}

// NewLadder returns an empty Ladder.
func NewLadder() *Ladder {
	return &Ladder{hosts: map[netip.Addr]string{}, flows: map[ladderKey]*flow{}}
}

// AddInterface tells the ladder an interface's addresses, so that
// endpoints are named by host.
func (l *Ladder) AddInterface(iface string, addrs []netip.Addr) {
	host, _, _ := strings.Cut(iface, ":")
	for _, a := range addrs {
		l.hosts[a] = host
	}
}

// ladderKey identifies a flow whichever way its packets go: the protocol,
// the two endpoints in a fixed order, and an ICMP echo's identifier.
type ladderKey struct {
	proto  uint8
	a, b   netip.AddrPort
	echoID uint16
}

type flow struct {
	key     ladderKey
	left    netip.AddrPort // drawn on the left: the first sender
	right   netip.AddrPort
	start   time.Time
	arrows  []*arrow
	routers []string
	seqs    seqBases
	dirs    [2]dirState // 0: left to right
}

type dirState struct {
	maxEnd  uint32
	haveEnd bool
	lastAck uint32
	lastWin uint16
	haveAck bool
	dupAcks int
}

type arrow struct {
	t       time.Duration
	toRight bool
	label   string
	marks   []string
	key     uint64
	seen    map[string]bool // iface+dir observed
	drop    string          // "why at where"
	dropAt  int             // 0 sender side, 1 middle, 2 receiver side
}

func (a *arrow) mark(m string) {
	if m != "" && !slices.Contains(a.marks, m) {
		a.marks = append(a.marks, m)
	}
}

// Add takes one observation and returns the lines a live view prints for
// it now: a flow heading when the flow is new or another flow was printed
// last, the packet's arrow when it is new, or a note when it tells more
// about an arrow already drawn (where it was dropped, say).
func (l *Ladder) Add(p *Packet) []string {
	d, ok := dissect(p.Data)
	if !ok {
		return nil
	}
	key, ok := l.keyOf(&d)
	if !ok {
		return nil
	}
	f := l.flows[key]
	if f == nil {
		f = &flow{key: key, start: p.Time, seqs: seqBases{}}
		src, dst := ends(&d)
		if d.tcp && d.flags&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN|wire.TCPFlagACK {
			src, dst = dst, src // the SYN-ACK's receiver opened the connection
		}
		f.left, f.right = src, dst
		l.flows[key] = f
		l.order = append(l.order, f)
	}
	src, _ := ends(&d)
	toRight := src == f.left
	host := p.Host()
	var lines []string
	if host != l.hosts[d.src] && host != l.hosts[d.dst] && host != "" && !slices.Contains(f.routers, host) {
		f.routers = append(f.routers, host)
		if l.last == f {
			// The heading is out already: say so live.
			lines = append(lines, l.note(f, p.Time, "(through "+host+")")...)
		}
	}

	h := fnv.New64a()
	h.Write(d.l4)
	k := h.Sum64() ^ uint64(d.ipID)<<48
	seenAt := p.Iface + "/" + p.Dir.String()
	// The same packet seen at another point is the same arrow; seen again
	// at the same point, it is a duplicate.
	dup := false
	for i := len(f.arrows) - 1; i >= 0; i-- {
		a := f.arrows[i]
		if a.key != k || a.toRight != toRight {
			continue
		}
		if a.seen[seenAt] {
			if !d.v6 || p.Time.Sub(f.start)-a.t < time.Millisecond {
				// The same bytes (and IPv4 ID) again at the same point:
				// a duplicate, not a retransmission.
				dup = true
				break
			}
			continue
		}
		a.seen[seenAt] = true
		if p.Drop != "" && a.drop == "" {
			l.dropped(a, p, &d)
			lines = append(lines, l.note(f, p.Time, "^ "+a.label+" dropped "+a.drop)...)
		}
		return lines
	}

	a := &arrow{t: p.Time.Sub(f.start), toRight: toRight, key: k, seen: map[string]bool{seenAt: true}}
	dir := &f.dirs[0]
	if !toRight {
		dir = &f.dirs[1]
	}
	a.label = l.label(f, &d, dir, a)
	if dup {
		a.mark("duplicate")
	}
	if p.Drop != "" {
		l.dropped(a, p, &d)
	}
	if p.Note != "" {
		a.mark(p.Note)
	}
	if !d.ipOK || !d.l4OK && len(d.l4) > 0 {
		a.mark("bad checksum")
	}
	f.arrows = append(f.arrows, a)
	return append(lines, l.live(f, a)...)
}

// dropped records where and why p, an observation of a, went no further,
// and places the X on the arrow: at the sender, a router, or the receiver.
func (l *Ladder) dropped(a *arrow, p *Packet, d *dissected) {
	a.drop = "at " + p.Iface + ": " + p.Drop
	a.dropAt = l.where(p.Host(), d)
}

func (l *Ladder) where(host string, d *dissected) int {
	switch host {
	case l.hosts[d.src]:
		return 0
	case l.hosts[d.dst]:
		return 2
	}
	return 1
}

// ends are a packet's source and destination, with ports when its
// protocol has them.
func ends(d *dissected) (src, dst netip.AddrPort) {
	if !d.hasPorts {
		return netip.AddrPortFrom(d.src, 0), netip.AddrPortFrom(d.dst, 0)
	}
	return netip.AddrPortFrom(d.src, d.sport), netip.AddrPortFrom(d.dst, d.dport)
}

// keyOf finds a packet's flow. An ICMP error belongs to the flow of the
// packet it quotes, when that flow is known.
func (l *Ladder) keyOf(d *dissected) (ladderKey, bool) {
	a, b := ends(d)
	k := ladderKey{proto: d.proto}
	switch d.proto {
	case wire.ProtoTCP, wire.ProtoUDP:
		if !d.hasPorts {
			return k, false
		}
	case wire.ProtoICMPv4, wire.ProtoICMPv6:
		if isEcho(d) {
			k.echoID = d.icmpID
		} else if len(d.l4) >= wire.ICMPHeaderLen {
			if q, ok := dissect(wire.ICMP(d.l4).Body()); ok {
				qk, ok := l.keyOf(&q)
				if _, known := l.flows[qk]; ok && known {
					return qk, true
				}
			}
		}
	}
	if cmpAddrPort(a, b) <= 0 {
		k.a, k.b = a, b
	} else {
		k.a, k.b = b, a
	}
	return k, true
}

func cmpAddrPort(a, b netip.AddrPort) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Port(), b.Port()))
}

func isEcho(d *dissected) bool {
	if d.v6 {
		return d.icmpType == wire.ICMPv6EchoRequest || d.icmpType == wire.ICMPv6EchoReply
	}
	return d.icmpType == wire.ICMPv4Echo || d.icmpType == wire.ICMPv4EchoReply
}

// label is an arrow's text, and its TCP marks (RFC 9293 §3.4 sequence
// space: a segment whose data lies wholly below the highest sequence
// number sent is a retransmission; RFC 5681 §2: an ACK with nothing new
// and the same window is a duplicate ACK).
func (l *Ladder) label(f *flow, d *dissected, dir *dirState, a *arrow) string {
	switch {
	case d.tcp:
		seq, ack := f.seqs.rel(d)
		var b strings.Builder
		b.WriteString(ladderFlags(d.flags))
		span := uint32(d.dataLen)
		if d.flags&wire.TCPFlagSYN != 0 {
			span++
		}
		if d.flags&wire.TCPFlagFIN != 0 {
			span++
		}
		if d.dataLen > 0 {
			fmt.Fprintf(&b, " seq=%d:%d", seq, seq+uint32(d.dataLen))
		} else {
			fmt.Fprintf(&b, " seq=%d", seq)
		}
		if d.flags&wire.TCPFlagACK != 0 {
			fmt.Fprintf(&b, " ack=%d", ack)
		}
		if d.dataLen > 0 {
			fmt.Fprintf(&b, " len=%d", d.dataLen)
		}
		if d.flags&wire.TCPFlagSYN != 0 || d.dataLen == 0 {
			fmt.Fprintf(&b, " win=%d", d.win)
		}
		end := d.seq + span
		if span > 0 {
			if dir.haveEnd && int32(end-dir.maxEnd) <= 0 {
				a.mark("retransmission")
			} else {
				dir.maxEnd, dir.haveEnd = end, true
			}
		}
		if span == 0 && d.flags&wire.TCPFlagRST == 0 && d.flags&wire.TCPFlagACK != 0 {
			if dir.haveAck && d.ack == dir.lastAck && d.win == dir.lastWin {
				dir.dupAcks++
				a.mark(fmt.Sprintf("dup ack #%d", dir.dupAcks))
			} else {
				dir.dupAcks = 0
			}
		} else if d.flags&wire.TCPFlagACK != 0 && d.ack != dir.lastAck {
			dir.dupAcks = 0
		}
		if d.flags&wire.TCPFlagACK != 0 {
			dir.lastAck, dir.lastWin, dir.haveAck = d.ack, d.win, true
		}
		return b.String()
	case d.proto == wire.ProtoUDP:
		return fmt.Sprintf("UDP len=%d", d.dataLen)
	case isEcho(d):
		t := icmpText(d)
		t = strings.TrimPrefix(strings.TrimPrefix(t, "ICMP6, "), "ICMP ")
		t, _, _ = strings.Cut(t, ",")
		return fmt.Sprintf("%s seq=%d", t, d.icmpSeq)
	default:
		t := icmpText(d)
		if h := l.hosts[d.src]; h != "" {
			return t + " from " + h
		}
		return t + " from " + d.src.String()
	}
}

// ladderFlags names TCP flags as textbooks do: SYN, SYN,ACK, FIN,ACK ...
func ladderFlags(f uint8) string {
	var parts []string
	for _, x := range []struct {
		bit  uint8
		name string
	}{{wire.TCPFlagSYN, "SYN"}, {wire.TCPFlagFIN, "FIN"}, {wire.TCPFlagRST, "RST"}, {wire.TCPFlagPSH, "PSH"}, {wire.TCPFlagACK, "ACK"}} {
		if f&x.bit != 0 {
			parts = append(parts, x.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// Geometry: "   12.345678 |<-- label -->|  marks".
const (
	timeCol  = 12 // "%11.6f " then the left bar
	minArrow = 40
)

func (l *Ladder) width() int {
	if l.Width <= 0 {
		return 100
	}
	return max(l.Width, timeCol+minArrow+10)
}

// arrowWidth is the space between the two bars.
func (l *Ladder) arrowWidth() int { return (l.width() - timeCol - 2) * 56 / 100 }

// live returns the lines for a new arrow (with the flow's heading first
// when needed).
func (l *Ladder) live(f *flow, a *arrow) []string {
	var lines []string
	if l.last != f {
		lines = append(lines, l.heading(f)...)
		l.last = f
	}
	return append(lines, l.arrowLines(a)...)
}

// note is a line about an arrow already drawn.
func (l *Ladder) note(f *flow, t time.Time, text string) []string {
	var lines []string
	if l.last != f {
		lines = append(lines, l.heading(f)...)
		l.last = f
	}
	s := fmt.Sprintf("%11.6f %s", t.Sub(f.start).Seconds(), "  "+text)
	return append(lines, clip(s, l.width()))
}

func (l *Ladder) name(ap netip.AddrPort, withPort bool) string {
	s := ap.Addr().String()
	if withPort {
		s = ap.String()
	}
	if h := l.hosts[ap.Addr()]; h != "" {
		return h + " " + s
	}
	return s
}

func (l *Ladder) heading(f *flow) []string {
	proto := "TCP"
	ports := true
	switch f.key.proto {
	case wire.ProtoUDP:
		proto = "UDP"
	case wire.ProtoICMPv4:
		proto, ports = "ICMP", false
	case wire.ProtoICMPv6:
		proto, ports = "ICMPv6", false
	}
	title := fmt.Sprintf("%s %s <-> %s", proto, l.name(f.left, ports), l.name(f.right, ports))
	if len(f.routers) > 0 {
		title += " via " + strings.Join(f.routers, ", ")
	}
	left, right := l.name(f.left, ports), l.name(f.right, ports)
	aw := l.arrowWidth()
	cols := fmt.Sprintf("%11s %s", "seconds", left)
	pad := timeCol + aw + 2 - len(cols) - len(right)
	cols += strings.Repeat(" ", max(pad, 1)) + right
	return []string{"", clip(title, l.width()), clip(cols, l.width())}
}

// arrowLines draws one arrow: dashes with the label in them, the head at
// the receiver, or an X where the packet was dropped; marks follow the
// right bar and wrap onto lines of their own.
func (l *Ladder) arrowLines(a *arrow) []string {
	aw := l.arrowWidth()
	label := " " + a.label + " "
	if len(label) > aw-6 {
		// Too long for the arrow: PSH is the flag that says least.
		label = strings.Replace(label, "PSH,", "", 1)
	}
	if len(label) > aw-6 {
		label = label[:aw-6]
	}
	body := []byte(strings.Repeat("-", aw))
	start := (aw - len(label)) / 2
	copy(body[start:], label)
	if a.toRight {
		body[aw-1] = '>'
	} else {
		body[0] = '<'
	}
	if a.drop != "" {
		// Cut the arrow where the packet died: past the label, then blank
		// to the far bar.
		var x int
		switch a.dropAt {
		case 0:
			x = aw * 3 / 4
		case 1:
			x = aw * 7 / 8
		default:
			x = aw - 2
		}
		if a.toRight {
			x = max(x, start+len(label)+1)
			body[x] = 'X'
			for i := x + 1; i < aw; i++ {
				body[i] = ' '
			}
		} else {
			x = min(aw-1-x, start-2)
			x = max(x, 0)
			body[x] = 'X'
			for i := 0; i < x; i++ {
				body[i] = ' '
			}
		}
	}
	marks := slices.Clone(a.marks)
	if a.drop != "" {
		marks = append([]string{"dropped " + a.drop}, marks...)
	}
	first := fmt.Sprintf("%11.6f |%s|", a.t.Seconds(), body)
	blank := fmt.Sprintf("%11s |%s|", "", strings.Repeat(" ", aw))
	lines := []string{first}
	// The marks follow the right bar, wrapped at spaces onto lines of
	// their own.
	room := l.width() - len(first) - 2
	cur := 0
	for _, word := range strings.Fields(strings.Join(marks, ", ")) {
		last := &lines[len(lines)-1]
		switch {
		case cur == 0:
			*last += "  " + word
			cur = len(word)
		case cur+1+len(word) <= room:
			*last += " " + word
			cur += 1 + len(word)
		default:
			lines = append(lines, blank+"  "+word)
			cur = len(word)
		}
	}
	return lines
}

func clip(s string, w int) string {
	if len(s) > w {
		return s[:w]
	}
	return s
}

// Render draws every flow added so far as one whole diagram each, in the
// order the flows started (for a saved file, where nothing is live).
func (l *Ladder) Render() string {
	var b strings.Builder
	for _, f := range l.order {
		for _, s := range l.heading(f) {
			b.WriteString(s)
			b.WriteByte('\n')
		}
		for _, a := range f.arrows {
			for _, s := range l.arrowLines(a) {
				b.WriteString(s)
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}
