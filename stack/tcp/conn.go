package tcp

import (
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/internal/deadline"
	"github.com/labnet-dev/labnet/stack/wire"
)

var errAddrInUse = syscall.EADDRINUSE

type (
	netConn = net.Conn
	netAddr = net.Addr
)

func tcpAddr(a netip.AddrPort) *net.TCPAddr { return net.TCPAddrFromAddrPort(a) }

// opErr builds the *net.OpError that net.Conn users expect.
func opErr(op string, local, remote netip.AddrPort, err error) error {
	e := &net.OpError{Op: op, Net: "tcp", Err: err}
	if local.IsValid() {
		e.Source = tcpAddr(local)
	}
	if remote.IsValid() {
		e.Addr = tcpAddr(remote)
	}
	return e
}

// Conn is a TCP connection (a net.Conn), as gVisor's gonet.TCPConn.
type Conn struct {
	e *endpoint

	abortOnClose atomic.Bool // SetLinger(0): Close resets

	rdl, wdl *deadline.Deadline
	once     sync.Once
}

var _ net.Conn = (*Conn)(nil)

func newConn(e *endpoint) *Conn {
	c := &Conn{e: e, rdl: deadline.New(), wdl: deadline.New()}
	return c
}

// Read reads received data; io.EOF after the peer's FIN.
func (c *Conn) Read(b []byte) (int, error) {
	e := c.e
	if c.rdl.Passed() {
		// A deadline in the past fails the call, data or not (net.Conn).
		return 0, c.opError("read", os.ErrDeadlineExceeded)
	}
	for {
		e.mu.Lock()
		if e.rcvBuf.len() > 0 {
			if len(b) == 0 {
				e.release()
				return 0, nil
			}
			before := e.rcvWindow()
			n := e.rcvBuf.read(b)
			// Tell the peer the window opened if it grew enough (receiver
			// SWS avoidance decides in rcvWindow) — especially from zero.
			if e.state.synchronized() && e.state != stateTimeWait && e.rcvWindow() > before {
				e.sendACK()
			}
			e.unlock()
			return n, nil
		}
		switch {
		case e.readShut:
			e.release()
			return 0, io.EOF
		case e.peerFin:
			e.release()
			return 0, io.EOF
		case e.err != nil:
			err := e.err
			e.release()
			if err == errClosed || err == errHostDown {
				return 0, c.opError("read", net.ErrClosed)
			}
			return 0, c.opError("read", err)
		case e.state == stateClosed || e.state == stateTimeWait:
			e.release()
			return 0, io.EOF
		}
		e.release()
		select {
		case <-e.rcvSignal:
		case <-c.rdl.Done():
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
	}
}

// Write queues data for sending, blocking while the send buffer is full.
func (c *Conn) Write(b []byte) (int, error) {
	e := c.e
	if c.wdl.Passed() {
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	written := 0
	for {
		e.mu.Lock()
		if e.err != nil || e.finQueued || !e.state.canSend() {
			err := e.err
			e.release()
			switch {
			case err == errClosed || err == errHostDown:
				err = net.ErrClosed
			case err == nil:
				err = syscall.EPIPE
			}
			return written, c.opError("write", err)
		}
		n := e.sndBuf.write(b[written:])
		written += n
		if n > 0 {
			e.output()
		}
		e.unlock()
		if written == len(b) {
			return written, nil
		}
		select {
		case <-e.sndSignal:
		case <-c.wdl.Done():
			return written, c.opError("write", os.ErrDeadlineExceeded)
		}
	}
}

// CloseWrite sends a FIN after the queued data (a half-close): the peer
// reads EOF, and this side can still read.
func (c *Conn) CloseWrite() error {
	e := c.e
	e.mu.Lock()
	defer e.unlock()
	return c.shutdownWriteLocked()
}

func (c *Conn) shutdownWriteLocked() error {
	e := c.e
	if e.finQueued {
		return nil
	}
	switch e.state {
	case stateEstablished, stateSynReceived:
		e.state = stateFinWait1
	case stateCloseWait:
		e.state = stateLastAck
	default:
		return nil
	}
	e.finQueued = true
	e.finAt = e.sndUna.add(e.sndBuf.len())
	e.output()
	return nil
}

// CloseRead discards further received data.
func (c *Conn) CloseRead() error {
	e := c.e
	e.mu.Lock()
	defer e.unlock()
	e.readShut = true
	notify(e.rcvSignal)
	return nil
}

// Close closes both directions. Unread data makes it a reset (RFC 9293
// §3.6 lets a close with pending data abort; Linux does so, telling the
// peer the data was not read); otherwise a FIN goes after the queued data
// and the connection finishes in the background.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		e := c.e
		e.mu.Lock()
		e.appClosed = true
		switch {
		case e.state == stateClosed:
		case e.state == stateSynSent:
			e.closeLocked(errClosed)
		case e.rcvBuf.len() > 0 && !e.readShut || c.abortOnClose.Load():
			e.sendSegment(wire.TCPFlagRST|wire.TCPFlagACK, e.sndNxt, 0)
			e.p.stats.resetsSent.Add(1)
			e.closeLocked(errClosed)
		default:
			c.shutdownWriteLocked()
			if e.state == stateFinWait2 {
				e.armFinWait2()
			}
		}
		if e.err == nil {
			e.err = errClosed
		}
		e.readShut = true
		notify(e.rcvSignal)
		notify(e.sndSignal)
		e.unlock()
		c.rdl.Stop()
		c.wdl.Stop()
	})
	return err
}

func (c *Conn) opError(op string, err error) error {
	return opErr(op, c.e.local, c.e.remote, err)
}

// LocalAddr is a *net.TCPAddr.
func (c *Conn) LocalAddr() net.Addr { return tcpAddr(c.e.local) }

// RemoteAddr is a *net.TCPAddr.
func (c *Conn) RemoteAddr() net.Addr { return tcpAddr(c.e.remote) }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.Set(t)
	c.wdl.Set(t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rdl.Set(t); return nil }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wdl.Set(t); return nil }

// SetLinger with sec 0 makes Close reset the connection at once, dropping
// unsent data, as SO_LINGER with a zero timeout does; any other value
// keeps the default (a graceful close finishing in the background).
func (c *Conn) SetLinger(sec int) error {
	c.abortOnClose.Store(sec == 0)
	return nil
}

// SetNoDelay turns Nagle's algorithm off (true) or on.
func (c *Conn) SetNoDelay(noDelay bool) error {
	e := c.e
	e.mu.Lock()
	defer e.unlock()
	e.nodelay = noDelay
	if noDelay {
		e.output()
	}
	return nil
}

// SetKeepAlive turns keepalive probes on with a 15s idle period (Go's
// default) or off.
func (c *Conn) SetKeepAlive(on bool) error {
	if on {
		return c.SetKeepAlivePeriod(15 * time.Second)
	}
	return c.SetKeepAlivePeriod(0)
}

// SetKeepAlivePeriod sets the idle time before keepalive probes.
func (c *Conn) SetKeepAlivePeriod(d time.Duration) error {
	e := c.e
	e.mu.Lock()
	defer e.unlock()
	e.keepalive = d
	e.armKeepalive()
	return nil
}

// handleICMP reacts to an ICMP error quoting one of our segments (RFC 5927
// §4: only when the quoted sequence number is in flight).
func (e *endpoint) handleICMP(ie stack.ICMPError, s seq) {
	e.mu.Lock()
	defer e.unlock()
	if s.lt(e.sndUna) || s.gt(e.sndNxt) {
		return
	}
	switch {
	case ie.TooBig():
		// RFC 1191 §6.3 / RFC 8201 §5.2: lower the MSS to fit the reported
		// MTU and resend what no longer fits.
		mtu := int(ie.MTU)
		if mtu < 68 || (e.remote.Addr().Is6() && mtu < wire.IPv6MinMTU) {
			return
		}
		mss := headerMSS(e.remote.Addr(), mtu)
		if e.tsOK {
			mss -= 12 // the timestamp option rides on every segment (RFC 6691)
		}
		if mss >= e.mss || mss < 64 {
			return
		}
		e.mss = mss
		if e.sndUna != e.sndNxt {
			e.highRxt = e.sndUna
			e.retransmit(e.sndUna, min(e.mss, e.sndNxt.diff(e.sndUna)))
		}
		e.output()
	case ie.Unreachable():
		// RFC 1122 §4.2.3.9: a hard error during the handshake aborts it;
		// later it is a soft error the connection rides out.
		if e.state == stateSynSent {
			e.closeLocked(syscall.EHOSTUNREACH)
		}
	}
}
