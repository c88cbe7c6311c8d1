package stack_test

import (
	"net/netip"
	"testing"

	"github.com/labnet-dev/labnet/stack"
)

// fateLink gives each packet the next fate in fates.
type fateLink struct{ fates []stack.Drop }

func (l *fateLink) Send(nextHop netip.Addr, pkt []byte) error {
	_, err := l.SendFate(nextHop, pkt)
	return err
}

func (l *fateLink) SendFate(netip.Addr, []byte) (stack.LinkFate, error) {
	d := l.fates[0]
	l.fates = l.fates[1:]
	return stack.LinkFate{Drop: d}, nil
}

// TestLinkRefusal: a packet the link refuses (an overlay's full queue) is
// a transmit drop, not a packet sent, and no error to the sender; one its
// impairments lose was sent. Taps see both with their reasons.
func TestLinkRefusal(t *testing.T) {
	for _, d := range []stack.Drop{stack.DropOverlayQueueFull, stack.DropNoNodeRoute, stack.DropOverlayTooBig, stack.DropOverlayDown, stack.DropHostUnreachable} {
		if !d.Refused() {
			t.Errorf("%q is not a refusal", d)
		}
	}
	for _, d := range []stack.Drop{stack.DropNone, stack.DropLoss, stack.DropLinkQueueFull, stack.DropQueueFull} {
		if d.Refused() {
			t.Errorf("%q is a refusal", d)
		}
	}

	link := &fateLink{}
	s := stack.New(stack.Config{Name: "h", Clock: newFakeClock()})
	nic, err := s.AddInterface("eth0", 1500, link, netip.MustParsePrefix("10.0.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	send := func() {
		t.Helper()
		if _, err := s.SendIP(netip.Addr{}, netip.MustParseAddr("10.0.0.2"), 253, 0, make([]byte, 20)); err != nil {
			t.Fatalf("SendIP: %v", err)
		}
	}
	var log tapLog
	for _, tapped := range []bool{false, true} {
		if tapped {
			remove, err := nic.AddTap(nil, log.tap)
			if err != nil {
				t.Fatal(err)
			}
			defer remove()
		}
		link.fates = []stack.Drop{stack.DropOverlayQueueFull, stack.DropLoss, stack.DropNone}
		before := nic.Counters()
		send()
		send()
		send()
		c := nic.Counters()
		if c.TxDropped-before.TxDropped != 1 || c.TxPackets-before.TxPackets != 2 || c.TxBytes-before.TxBytes != 80 {
			t.Errorf("tapped=%v: counters went from %+v to %+v; want 1 dropped, 2 sent", tapped, before, c)
		}
	}
	recs := log.take()
	if len(recs) != 3 || recs[0].Drop != stack.DropOverlayQueueFull || recs[1].Drop != stack.DropLoss || recs[2].Drop != stack.DropNone {
		t.Errorf("tap records %+v", recs)
	}
	if got := stack.DropOverlayQueueFull.String(); got != "overlay queue full" {
		t.Errorf("reason reads %q", got)
	}
}
