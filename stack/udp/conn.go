package udp

import (
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

var (
	_ net.PacketConn = (*PacketConn)(nil)
	_ net.Conn       = (*Conn)(nil)
)

// PacketConn is an unconnected UDP socket: a net.PacketConn whose addresses
// are *net.UDPAddr. Its errors are *net.OpError, as (*net.UDPConn)'s are.
type PacketConn struct{ e *endpoint }

// Conn is a connected UDP socket: a net.Conn that sends to, and receives
// from, one peer. An ICMP error about its datagrams (port unreachable, say)
// fails its next Read or Write, as on Linux.
type Conn struct{ e *endpoint }

// ListenPacket opens an unconnected socket bound to laddr. The unspecified
// address of a family (0.0.0.0, ::) receives datagrams to any of the host's
// addresses of that family; the zero Addr (netip.AddrPort{} or a bare port)
// any address of both families, like Go's net.ListenPacket("udp", ":53").
// Port 0 picks an unused ephemeral port (49152-65535, RFC 6335). A port
// another unconnected socket holds on an overlapping address fails with
// EADDRINUSE; an address that is not the host's with EADDRNOTAVAIL.
func (p *Protocol) ListenPacket(laddr netip.AddrPort) (*PacketConn, error) {
	la := laddr.Addr().Unmap().WithZone("")
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: "udp", Addr: udpAddr(laddr), Err: err}
	}
	if la.IsValid() && !la.IsUnspecified() && !p.s.IsLocal(la) {
		return nil, opErr(syscall.EADDRNOTAVAIL)
	}
	e := newEndpoint(p, netip.AddrPortFrom(la, laddr.Port()), netip.AddrPort{})
	if err := p.bind(e); err != nil {
		return nil, opErr(err)
	}
	return &PacketConn{e}, nil
}

// Dial opens a socket connected to raddr, as connect(2) on a UDP socket
// does: it sends nothing, but fixes the peer, so only the peer's datagrams
// are read and ICMP errors about the socket's datagrams are reported. An
// unspecified or zero laddr address takes the source address the stack
// would route from, as Linux chooses it at connect time; port 0 an
// ephemeral port. A connected socket may share its local port with
// unconnected sockets, which then no longer see the peer's datagrams.
func (p *Protocol) Dial(laddr, raddr netip.AddrPort) (*Conn, error) {
	la := laddr.Addr().Unmap().WithZone("")
	ra := raddr.Addr().Unmap().WithZone("")
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "udp", Source: udpAddr(laddr), Addr: udpAddr(raddr), Err: err}
	}
	if !ra.IsValid() || ra.IsUnspecified() || raddr.Port() == 0 {
		return nil, opErr(&net.AddrError{Err: "invalid remote address", Addr: raddr.String()})
	}
	switch {
	case la.IsValid() && la.Is4() != ra.Is4():
		return nil, opErr(&net.AddrError{Err: "mismatched local address type", Addr: laddr.String()})
	case la.IsValid() && !la.IsUnspecified() && !p.s.IsLocal(la):
		return nil, opErr(syscall.EADDRNOTAVAIL)
	}
	// The socket keeps its route (NewPath), as Linux caches one on a
	// connected socket; an unspecified local address takes the source
	// address selection picks for it.
	path, err := p.s.NewPath(la, ra, wire.ProtoUDP)
	if err != nil {
		return nil, opErr(sendErrno(err))
	}
	la = path.Src()
	e := newEndpoint(p, netip.AddrPortFrom(la, laddr.Port()), netip.AddrPortFrom(ra, raddr.Port()))
	e.path = path
	if err := p.bind(e); err != nil {
		return nil, opErr(err)
	}
	return &Conn{e}, nil
}

// udpAddr converts ap for a net API; an invalid address with a port (a
// socket of both families) shows as [::], as Go's own sockets show it. It
// returns a nil interface, not a nil pointer, for the zero AddrPort.
func udpAddr(ap netip.AddrPort) net.Addr {
	if ap == (netip.AddrPort{}) {
		return nil
	}
	if !ap.Addr().IsValid() {
		ap = netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port())
	}
	return net.UDPAddrFromAddrPort(ap)
}

// opError wraps a socket error for operation op ("read", "write", "close").
func (e *endpoint) opError(op string, remote netip.AddrPort, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: udpAddr(e.local), Addr: udpAddr(remote), Err: err}
}

func (e *endpoint) localAddr() net.Addr { return udpAddr(e.local) }

func (e *endpoint) closeConn() error {
	if err := e.close(); err != nil {
		return e.opError("close", e.remote, err)
	}
	return nil
}

func (e *endpoint) setDeadline(t time.Time) error {
	e.rd.Set(t)
	e.wd.Set(t)
	return nil
}

// ReadFrom reads one datagram into b and returns its length (truncated to
// len(b) if it was longer) and sender, a *net.UDPAddr. It blocks until a
// datagram arrives, the read deadline passes, or the socket is closed.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// ReadFromUDPAddrPort is ReadFrom with the sender as a netip.AddrPort, as
// (*net.UDPConn).ReadFromUDPAddrPort.
func (c *PacketConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.e.read(b)
	if err != nil {
		return 0, netip.AddrPort{}, c.e.opError("read", netip.AddrPort{}, err)
	}
	return n, from, nil
}

// WriteTo sends b as one datagram to addr, which must be a *net.UDPAddr.
// It never blocks. A datagram larger than the path MTU allows fails with
// EMSGSIZE: the stack does not fragment.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.e.localAddr(), Addr: addr, Err: syscall.EINVAL}
	}
	return c.WriteToUDPAddrPort(b, ua.AddrPort())
}

// WriteToUDPAddrPort is WriteTo with a netip.AddrPort, as
// (*net.UDPConn).WriteToUDPAddrPort.
func (c *PacketConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	to := netip.AddrPortFrom(addr.Addr().Unmap().WithZone(""), addr.Port())
	if err := c.e.send(b, to); err != nil {
		return 0, c.e.opError("write", addr, err)
	}
	return len(b), nil
}

// Close closes the socket; blocked calls return net.ErrClosed.
func (c *PacketConn) Close() error { return c.e.closeConn() }

// LocalAddr is the bound address, a *net.UDPAddr.
func (c *PacketConn) LocalAddr() net.Addr { return c.e.localAddr() }

// SetDeadline sets the read and write deadlines.
func (c *PacketConn) SetDeadline(t time.Time) error { return c.e.setDeadline(t) }

// SetReadDeadline sets the time after which reads fail with a timeout
// (os.ErrDeadlineExceeded), pending ones included; zero means never.
func (c *PacketConn) SetReadDeadline(t time.Time) error { c.e.rd.Set(t); return nil }

// SetWriteDeadline sets the time after which writes fail with a timeout.
func (c *PacketConn) SetWriteDeadline(t time.Time) error { c.e.wd.Set(t); return nil }

// SetReadBuffer sets how many bytes of datagrams may wait to be read (256 KiB
// by default; each datagram counts at least 1 KiB), as SO_RCVBUF does.
func (c *PacketConn) SetReadBuffer(bytes int) error { c.e.setReadBuffer(bytes); return nil }

// Read reads one datagram from the peer into b, truncating it to len(b). A
// pending ICMP error about an earlier Write (ECONNREFUSED for port
// unreachable) fails it once.
func (c *Conn) Read(b []byte) (int, error) {
	n, _, err := c.e.read(b)
	if err != nil {
		return 0, c.e.opError("read", c.e.remote, err)
	}
	return n, nil
}

// Write sends b as one datagram to the peer. It never blocks. A pending ICMP
// error fails it once, without sending; a datagram larger than the path MTU
// fails with EMSGSIZE.
func (c *Conn) Write(b []byte) (int, error) {
	if err := c.e.send(b, c.e.remote); err != nil {
		return 0, c.e.opError("write", c.e.remote, err)
	}
	return len(b), nil
}

// Close closes the socket; blocked calls return net.ErrClosed.
func (c *Conn) Close() error { return c.e.closeConn() }

// LocalAddr is the bound address, a *net.UDPAddr.
func (c *Conn) LocalAddr() net.Addr { return c.e.localAddr() }

// RemoteAddr is the peer, a *net.UDPAddr.
func (c *Conn) RemoteAddr() net.Addr { return udpAddr(c.e.remote) }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.e.setDeadline(t) }

// SetReadDeadline sets the time after which reads fail with a timeout
// (os.ErrDeadlineExceeded), pending ones included; zero means never.
func (c *Conn) SetReadDeadline(t time.Time) error { c.e.rd.Set(t); return nil }

// SetWriteDeadline sets the time after which writes fail with a timeout.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.e.wd.Set(t); return nil }

// SetReadBuffer sets how many bytes of datagrams may wait to be read, as
// (*PacketConn).SetReadBuffer.
func (c *Conn) SetReadBuffer(bytes int) error { c.e.setReadBuffer(bytes); return nil }
