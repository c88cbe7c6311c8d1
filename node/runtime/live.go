package runtime

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/labnet-dev/labnet/format/capture"
	"github.com/labnet-dev/labnet/node/probe"
	"github.com/labnet-dev/labnet/stack"
)

// This file is what node/api's live calls see of a running host (its
// LiveHost interface): the probes' host, plain status structs, standard
// sockets and capture taps. No stack type crosses it.

// Probe is the host the probes (ping, traceroute, fetch, bench) run from.
func (h *Host) Probe() probe.Host { return probe.NewHost(h.stack, h.tcp, h.udp) }

// Status reports the host's interfaces (with their networks and what
// their impairments did), routes and IP counters.
func (h *Host) Status() probe.HostStatus {
	st := probe.Status(h.Probe())
	for i := range st.Interfaces {
		ifc := &st.Interfaces[i]
		if hi := h.iface(ifc.Name); hi != nil {
			ifc.Network = hi.network
		}
		c := h.ImpairCounters(ifc.Name)
		ifc.Impair = probe.ImpairCounters{
			Dropped: c.Dropped, Duplicated: c.Duplicated, Corrupted: c.Corrupted,
			Delayed: c.Delayed, Reordered: c.Reordered, QueueDropped: c.QueueDropped,
		}
	}
	return st
}

// Connections lists the host's TCP connections and UDP sockets.
func (h *Host) Connections() []probe.Connection { return probe.Connections(h.Probe()) }

// DialTCP connects from the host to dst. The connection has CloseWrite and
// SetLinger, as a *net.TCPConn does.
func (h *Host) DialTCP(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	c, err := h.tcp.Dial(ctx, dst)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListenTCP listens on the host's addr (the zero address: every address
// of both families). Its connections are as DialTCP's.
func (h *Host) ListenTCP(addr netip.AddrPort) (net.Listener, error) {
	l, err := h.tcp.Listen(addr)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListenUDP opens a UDP socket on the host's addr (the zero address:
// datagrams to every address of both families). It has
// ReadFromUDPAddrPort and WriteToUDPAddrPort, as a *net.UDPConn does.
func (h *Host) ListenUDP(addr netip.AddrPort) (net.PacketConn, error) {
	pc, err := h.udp.ListenPacket(addr)
	if err != nil {
		return nil, err
	}
	return pc, nil
}

// Tap gives deliver every packet interface iface sends and receives (with
// its fate), as a capture packet of interface label ("host:iface"), until
// remove is called. want, when set, picks the packets before they are
// copied. deliver must not block; it owns the packet, whose Data it must
// not change (other taps share it).
func (h *Host) Tap(iface, label string, want func(pkt []byte) bool, deliver func(*capture.Packet)) (remove func(), err error) {
	for _, nic := range h.stack.Interfaces() {
		if nic.Name() != iface {
			continue
		}
		remove, err := nic.AddTap(want, func(r stack.TapRecord) {
			p := fromTap(label, r)
			deliver(&p)
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		return remove, nil
	}
	return nil, fmt.Errorf("%s: %w", label, probe.ErrNoInterface)
}
