package stack

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Drop says why a packet was discarded: by the stack on input, by a full
// receive queue before the stack saw it, or by the link (an impairment) on
// output. DropNone means it was not.
type Drop uint8

// The reasons a packet is dropped.
const (
	DropNone            Drop = iota
	DropMalformed            // bad header, checksum or martian source (RFC 1122 §3.2.1)
	DropNotForUs             // a host's packet for another address (RFC 1122 §3.3.4.2)
	DropFragment             // fragments are not reassembled
	DropUnknownProtocol      // no such transport (RFC 1122 §3.2.2.1)
	DropPortUnreachable      // no socket on the port (RFC 1122 §3.2.2.1)
	DropTTLExceeded          // TTL / hop limit ran out (RFC 1812 §5.3.1)
	DropNoRoute              // no route (RFC 1812 §5.2.7.1)
	DropTooBig               // larger than the next link's MTU (RFC 1191)
	DropHostUnreachable      // nobody owns the next hop on the link
	DropQueueFull            // the host's receive queue was full
	DropLoss                 // lost on the link (impairment loss)
	DropLinkQueueFull        // the link's impairment queue was full
	DropDown                 // the interface had no link, or the stack was closed

	// The overlay (the tunnel between labd nodes) refused to carry the
	// packet to the node that owns its next hop: it never left.
	DropOverlayQueueFull // the overlay's send queue to that node was full
	DropNoNodeRoute      // no overlay path to the node that owns the next hop
	DropOverlayTooBig    // too big for one overlay datagram
	DropOverlayDown      // the overlay has stopped
)

var dropNames = [...]string{
	DropNone:            "",
	DropMalformed:       "malformed",
	DropNotForUs:        "not for this host",
	DropFragment:        "fragment",
	DropUnknownProtocol: "protocol unreachable",
	DropPortUnreachable: "port unreachable",
	DropTTLExceeded:     "TTL exceeded",
	DropNoRoute:         "no route",
	DropTooBig:          "too big for next hop MTU",
	DropHostUnreachable: "next hop unreachable",
	DropQueueFull:       "receive queue full",
	DropLoss:            "impairment loss",
	DropLinkQueueFull:   "impairment queue full",
	DropDown:            "interface down",

	DropOverlayQueueFull: "overlay queue full",
	DropNoNodeRoute:      "no route to node",
	DropOverlayTooBig:    "too big for overlay",
	DropOverlayDown:      "overlay down",
}

// String names the reason in the words captures show.
func (d Drop) String() string {
	if int(d) < len(dropNames) {
		return dropNames[d]
	}
	return "drop"
}

// drop counts a packet the stack discards and returns why.
func (s *Stack) drop(d Drop) Drop {
	st := &s.stats
	switch d {
	case DropMalformed:
		st.malformed.Add(1)
	case DropNotForUs:
		st.notForUs.Add(1)
	case DropFragment:
		st.fragmentsDropped.Add(1)
	case DropUnknownProtocol:
		st.unknownProtocol.Add(1)
	case DropTTLExceeded:
		st.ttlExceeded.Add(1)
	case DropNoRoute:
		st.noRoute.Add(1)
	case DropTooBig:
		st.tooBig.Add(1)
	case DropHostUnreachable:
		st.hostUnreachable.Add(1)
	}
	return d
}

// TapDir is the direction of a tapped packet.
type TapDir uint8

// Directions.
const (
	TapIn  TapDir = iota + 1 // received on the interface
	TapOut                   // sent through the interface
)

// TapRecord is one packet an interface sent or received, for captures.
type TapRecord struct {
	Time time.Time
	// Seq orders records of one process that have the same Time: it is
	// taken when the packet arrives or is sent, from a counter all stacks
	// share, so a packet received always comes before what the stack
	// sent because of it.
	Seq uint64
	Dir TapDir
	// Packet is the whole IP packet as it crossed the interface. It is the
	// tap's own copy, shared by every tap of the interface: read it, do not
	// change it.
	Packet []byte
	// Drop is why the packet went no further: the stack dropped it on
	// input, or the link lost it on output.
	Drop Drop
	// Note says what the link did to a packet it carried on (an
	// impairment: "corrupted", "duplicated", "delayed"); empty otherwise.
	Note string
}

// Tap receives an interface's packets. It is called on the packet path
// (any goroutine, possibly concurrently) and must not block.
type Tap func(TapRecord)

// tapSet is an interface's taps: an immutable slice swapped on change, so
// the packet path pays one atomic load when nothing is tapped.
type tapSet struct{ taps []*tapEntry }

type tapEntry struct {
	want func(pkt []byte) bool // nil: every packet
	fn   Tap
}

// maxTaps bounds an interface's taps: which of them want a packet is a
// bit mask.
const maxTaps = 64

// wants returns the mask of taps that want pkt: 0 when none does, and then
// the packet is not even copied.
func (t *tapSet) wants(pkt []byte) uint64 {
	var m uint64
	for i, e := range t.taps {
		if e.want == nil || e.want(pkt) {
			m |= 1 << i
		}
	}
	return m
}

// emit gives r to the taps in mask.
func (t *tapSet) emit(r TapRecord, mask uint64) {
	for i, e := range t.taps {
		if mask&(1<<i) != 0 {
			e.fn(r)
		}
	}
}

var tapMu sync.Mutex // serialises AddTap and its removals across NICs

var tapSeq atomic.Uint64 // TapRecord.Seq

// ErrTooManyTaps is returned by AddTap when an interface has maxTaps.
var ErrTooManyTaps = errors.New("too many captures on one interface")

// AddTap calls t with every packet the interface sends or receives from
// now on, until remove is called; with want set, only with the packets
// want accepts (it sees the packet as it crosses the interface, must not
// keep or change it, and must be quick). Taps cost nothing while none is
// added; while one is, each packet some tap wants is copied once.
func (n *NIC) AddTap(want func(pkt []byte) bool, t Tap) (remove func(), err error) {
	p := &tapEntry{want: want, fn: t}
	tapMu.Lock()
	old := n.taps.Load()
	next := &tapSet{}
	if old != nil {
		next.taps = append(next.taps, old.taps...)
	}
	if len(next.taps) >= maxTaps {
		tapMu.Unlock()
		return nil, ErrTooManyTaps
	}
	next.taps = append(next.taps, p)
	n.taps.Store(next)
	tapMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			tapMu.Lock()
			defer tapMu.Unlock()
			cur := n.taps.Load()
			var keep []*tapEntry
			for _, q := range cur.taps {
				if q != p {
					keep = append(keep, q)
				}
			}
			if len(keep) == 0 {
				n.taps.Store(nil)
			} else {
				n.taps.Store(&tapSet{taps: keep})
			}
		})
	}, nil
}

// Tapped reports whether the interface has taps.
func (n *NIC) Tapped() bool { return n.taps.Load() != nil }

// Refused reports whether d, as a link's fate of a packet, means the link
// refused it: the packet never left the interface, which counts it as a
// transmit drop (Counters.TxDropped), not as sent. A packet the link's
// impairments lose was sent and lost on the wire, as netem loses it.
func (d Drop) Refused() bool {
	switch d {
	case DropHostUnreachable, DropDown, DropOverlayQueueFull, DropNoNodeRoute, DropOverlayTooBig, DropOverlayDown:
		return true
	}
	return false
}

// LinkFate is what a link did with a packet it accepted, for taps.
type LinkFate struct {
	// Drop is why the link dropped it: DropLoss or DropLinkQueueFull
	// when its impairments did (the packet counts as sent), a reason
	// that is Refused when the link could not send it at all (an
	// overlay's full queue, say).
	Drop Drop
	Note string // what else it did: "corrupted", "duplicated", "delayed"
}

// A FateLink is a Link that can tell what became of a packet (a link with
// impairments, or one that can refuse a packet without an error, as an
// overlay with a full queue does). The NIC uses SendFate instead of Send:
// the fate goes to its counters and its taps.
type FateLink interface {
	Link
	SendFate(nextHop netip.Addr, pkt []byte) (LinkFate, error)
}

// DropRx counts a packet for this interface that was dropped before the
// stack saw it, and shows it to the interface's taps with reason d (a full
// queue, say). It does not keep pkt.
func (n *NIC) DropRx(pkt []byte, d Drop, now time.Time) {
	n.rxDropped.Add(1)
	if taps := n.taps.Load(); taps != nil {
		if mask := taps.wants(pkt); mask != 0 {
			taps.emit(TapRecord{Time: now, Seq: tapSeq.Add(1), Dir: TapIn, Packet: append([]byte(nil), pkt...), Drop: d}, mask)
		}
	}
}
