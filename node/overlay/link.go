package overlay

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// Link joins a labd's fabric to the overlay: it implements the fabric's
// Remote (SendRemote encapsulates a packet for the node that owns its next
// hop) and Run hands what arrives to a delivery function (the fabric's
// DeliverRemote).
type Link struct {
	c       *Conn
	deliver func(vni uint32, nextHop netip.Addr, pkt []byte) bool
}

// NewLink returns a link over c that delivers received packets with
// deliver, which takes ownership of pkt.
func NewLink(c *Conn, deliver func(vni uint32, nextHop netip.Addr, pkt []byte) bool) *Link {
	return &Link{c: c, deliver: deliver}
}

// SendRemote encapsulates pkt (an IP packet) in GENEVE with the VNI and
// next-hop option and sends it to peer. It takes ownership of pkt.
func (l *Link) SendRemote(peer netip.AddrPort, vni uint32, nextHop netip.Addr, pkt []byte) error {
	b, err := AppendPacket(make([]byte, 0, EncapLen(nextHop)+len(pkt)), vni, nextHop, pkt)
	if err != nil {
		return err
	}
	return l.c.WriteBatch(peer, [][]byte{b})
}

// Run receives until ctx is done or the Conn is closed.
func (l *Link) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { l.c.Close() })
	defer stop()
	msgs := make([]Message, 64)
	for {
		n, err := l.c.ReadBatch(msgs)
		for _, m := range msgs[:n] {
			h := m.Packet
			nh := h.NextHop()
			if !nh.IsValid() {
				continue
			}
			// The payload aliases the receive buffers: the stack gets its
			// own copy.
			l.deliver(h.VNI(), nh, append([]byte(nil), h.Payload()...))
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}
