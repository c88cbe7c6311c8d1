package tcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/labnet-dev/labnet/stack/wire"
)

// synRetries bounds SYN and SYN-ACK retransmissions (Linux tcp_syn_retries:
// 6, about two minutes with backoff from 1s).
const synRetries = 6

// connect starts an active open (RFC 9293 §3.5, Figure 6): send SYN, enter
// SYN-SENT. Called with e.mu held.
func (e *endpoint) connect() {
	e.iss = e.p.isn.isn(e.now(), e.local, e.remote)
	e.sndUna, e.sndNxt = e.iss, e.iss.add(1)
	e.state = stateSynSent
	e.mss = e.ourMSS()
	e.sendSegment(wire.TCPFlagSYN, e.iss, 0)
	e.armRTX()
}

// Dial opens a connection to raddr from this host (the source address from
// the routing table, an ephemeral port) and waits for the handshake.
func (p *Protocol) Dial(ctx context.Context, raddr netip.AddrPort) (*Conn, error) {
	return p.DialFrom(ctx, netip.AddrPort{}, raddr)
}

// DialFrom is Dial from a given local address and port (either may be zero).
func (p *Protocol) DialFrom(ctx context.Context, laddr, raddr netip.AddrPort) (*Conn, error) {
	opErr := func(err error) error { return opErr("dial", laddr, raddr, err) }
	if !raddr.Addr().IsValid() || raddr.Port() == 0 {
		return nil, opErr(errors.New("invalid remote address"))
	}
	// The source address: laddr's, else the one source selection picks
	// for the route (NewPath). Either way, no route fails the dial.
	path, err := p.s.NewPath(laddr.Addr(), raddr.Addr(), wire.ProtoTCP)
	if err == nil {
		err = path.Err()
	}
	if err != nil {
		return nil, opErr(err)
	}
	src := path.Src()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, opErr(errHostDown)
	}
	port := laddr.Port()
	if port == 0 {
		if port, err = p.ephemeralPort(src, raddr); err != nil {
			p.mu.Unlock()
			return nil, opErr(err)
		}
	}
	local := netip.AddrPortFrom(src, port)
	if p.conns[fourTuple{local, raddr}] != nil {
		p.mu.Unlock()
		return nil, opErr(errAddrInUse)
	}
	e := newEndpoint(p, local, raddr, path)
	e.mu.Lock()
	p.conns[fourTuple{local, raddr}] = e
	p.mu.Unlock()
	e.connect()
	e.unlock()

	select {
	case <-e.estSignal:
	case <-ctx.Done():
		e.abort(ctx.Err(), true)
		return nil, opErr(ctx.Err())
	}
	e.mu.Lock()
	err = e.err
	e.release()
	if err != nil {
		return nil, opErr(err)
	}
	return newConn(e), nil
}

// Listener is a TCP listening socket (a net.Listener).
type Listener struct {
	p     *Protocol
	addr  netip.AddrPort
	mu    sync.Mutex
	half  map[*endpoint]bool // SYN-RECEIVED
	ready chan *endpoint     // established, waiting for Accept
	done  chan struct{}
	once  sync.Once
}

// backlog bounds both the half-open and the accept queue.
const backlog = 1024

// Listen opens a listener on laddr: 0.0.0.0 accepts on every IPv4 address,
// [::] (or no address at all) on every address of both families; port 0
// picks a free one.
func (p *Protocol) Listen(laddr netip.AddrPort) (*Listener, error) {
	if !laddr.Addr().IsValid() {
		laddr = netip.AddrPortFrom(netip.IPv6Unspecified(), laddr.Port())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, opErr("listen", laddr, netip.AddrPort{}, errHostDown)
	}
	if laddr.Port() == 0 {
		port, err := p.ephemeralPort(laddr.Addr(), netip.AddrPort{})
		if err != nil {
			return nil, opErr("listen", laddr, netip.AddrPort{}, err)
		}
		laddr = netip.AddrPortFrom(laddr.Addr(), port)
	}
	if p.listeners[laddr] != nil {
		return nil, opErr("listen", laddr, netip.AddrPort{}, errAddrInUse)
	}
	l := &Listener{p: p, addr: laddr, half: map[*endpoint]bool{}, ready: make(chan *endpoint, backlog), done: make(chan struct{})}
	p.listeners[laddr] = l
	return l, nil
}

// handleSYN is a segment for a listener: RFC 9293 §3.10.7.2.
func (l *Listener) handleSYN(seg *segment) {
	p := l.p
	switch {
	case seg.has(wire.TCPFlagRST):
		return
	case seg.has(wire.TCPFlagACK):
		p.sendReset(seg)
		return
	case !seg.has(wire.TCPFlagSYN):
		return
	}
	l.mu.Lock()
	full := len(l.half) >= backlog || len(l.ready) >= backlog
	closed := l.isClosed()
	l.mu.Unlock()
	if closed {
		p.sendReset(seg)
		return
	}
	if full {
		return // as Linux without syncookies: drop, the peer retries
	}
	// A path from one of our addresses is made whatever the routing table
	// says: without a route back the SYN-ACK is lost, and retransmitted
	// until one appears.
	path, err := p.s.NewPath(seg.dst.Addr(), seg.src.Addr(), wire.ProtoTCP)
	if err != nil {
		return
	}
	e := newEndpoint(p, seg.dst, seg.src, path)
	e.listener = l
	e.mu.Lock()
	p.mu.Lock()
	if p.conns[fourTuple{seg.dst, seg.src}] != nil {
		p.mu.Unlock()
		e.release()
		return
	}
	p.conns[fourTuple{seg.dst, seg.src}] = e
	p.mu.Unlock()
	l.mu.Lock()
	l.half[e] = true
	l.mu.Unlock()
	e.state = stateSynReceived
	e.irs = seg.seq
	e.rcvNxt = seg.seq.add(1)
	e.rcvAdvEdge = e.rcvNxt
	e.negotiate(seg)
	e.iss = p.isn.isn(e.now(), e.local, e.remote)
	e.sndUna, e.sndNxt = e.iss, e.iss.add(1)
	e.sndWnd = int(seg.wnd) // never scaled on a SYN
	e.sndWl1, e.sndWl2 = seg.seq, e.iss
	e.lastRecv = e.now()
	e.sendSegment(wire.TCPFlagSYN|wire.TCPFlagACK, e.iss, 0)
	e.armRTX()
	e.unlock()
}

// negotiate takes the options of a SYN (RFC 9293 §3.7.1, RFC 7323 §2.2 and
// §3.2, RFC 2018 §2): each is on only when both sides sent it.
func (e *endpoint) negotiate(seg *segment) {
	o := &seg.opts
	e.peerMSS = 536 // RFC 9293 §3.7.1: the default without the option
	if o.MSS != 0 {
		e.peerMSS = int(o.MSS)
	}
	e.mss = max(min(e.peerMSS, e.ourMSS()), 64)
	if o.WindowScaleOK && !e.p.opts.DisableWindowScale {
		e.wsOK = true
		e.sndWscale = min(o.WindowScale, 14) // RFC 7323 §2.3: at most 14
	} else {
		e.rcvWscale = 0
	}
	e.sackOK = o.SACKPermitted && !e.p.opts.DisableSACK
	e.tsOK = o.TimestampsOK && !e.p.opts.DisableTimestamps
	if e.tsOK {
		e.tsRecent = o.TSVal
		// RFC 6691: the MSS counts no options; the timestamp option rides
		// on every segment, so data gets 12 bytes less.
		e.mss -= 12
	}
	e.cwnd, e.ssthresh = e.cc.init(e.mss)
}

// established completes the handshake on either side.
func (e *endpoint) established() {
	e.state = stateEstablished
	e.signalEstablished()
	if l := e.listener; l != nil {
		l.mu.Lock()
		delete(l.half, e)
		closed := l.isClosed()
		l.mu.Unlock()
		if closed {
			return
		}
		select {
		case l.ready <- e:
		default:
		}
	}
}

func (l *Listener) forget(e *endpoint) {
	l.mu.Lock()
	delete(l.half, e)
	l.mu.Unlock()
}

func (l *Listener) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Accept waits for the next connection.
func (l *Listener) Accept() (netConn, error) {
	select {
	case e := <-l.ready:
		return newConn(e), nil
	case <-l.done:
		return nil, opErr("accept", l.addr, netip.AddrPort{}, net.ErrClosed)
	}
}

// AcceptTCP is Accept with the concrete type.
func (l *Listener) AcceptTCP() (*Conn, error) {
	c, err := l.Accept()
	if err != nil {
		return nil, err
	}
	return c.(*Conn), nil
}

// Close stops listening and resets connections not yet accepted.
func (l *Listener) Close() error {
	first := false
	l.once.Do(func() { close(l.done); first = true })
	if !first {
		return nil
	}
	p := l.p
	p.mu.Lock()
	if p.listeners[l.addr] == l {
		delete(p.listeners, l.addr)
	}
	p.mu.Unlock()
	l.mu.Lock()
	var pending []*endpoint
	for e := range l.half {
		pending = append(pending, e)
	}
	l.mu.Unlock()
	for {
		select {
		case e := <-l.ready:
			pending = append(pending, e)
			continue
		default:
		}
		break
	}
	for _, e := range pending {
		e.abort(errClosed, true)
	}
	return nil
}

// Addr is the listening address.
func (l *Listener) Addr() netAddr { return tcpAddr(l.addr) }
