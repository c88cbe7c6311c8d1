package udp

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/internal/deadline"
	"github.com/labnet-dev/labnet/stack/wire"
)

// Receive buffer accounting. Each datagram is charged its length but at
// least minCharge, standing for its buffer and bookkeeping as Linux charges
// an skb's truesize, so the default buffer holds 256 small datagrams or
// 256 KiB of large ones. SetReadBuffer moves the limit within bounds.
const (
	defaultReadBuffer = 256 << 10
	minReadBuffer     = 4 << 10
	maxReadBuffer     = 16 << 20
	minCharge         = 1 << 10
)

// datagram is one received datagram. data aliases the packet it came in,
// which UDP owns (stack.Transport.HandlePacket).
type datagram struct {
	from netip.AddrPort
	data []byte
}

func (d datagram) charge() int { return max(len(d.data), minCharge) }

// endpoint is one socket: what PacketConn and Conn share.
type endpoint struct {
	p *Protocol
	// local is fixed once bound. Its Addr is a local address, the
	// unspecified address of one family (a wildcard), or invalid: a
	// wildcard of both families.
	local netip.AddrPort
	// remote is the peer of a connected socket, fixed at Dial; invalid
	// for an unconnected one.
	remote netip.AddrPort
	// path is a connected socket's route to remote, set at Dial: its
	// datagrams are not routed one by one.
	path *stack.Path

	rd, wd *deadline.Deadline

	// readable holds a token when a reader may find something: a datagram
	// or an error. A reader that takes a datagram and leaves more passes
	// the token on.
	readable chan struct{}
	closedCh chan struct{} // closed by close

	mu      sync.Mutex
	closed  bool
	queue   []datagram // queue[head:] waits to be read
	head    int
	queued  int           // bytes charged for the queue
	readBuf int           // limit of queued
	err     syscall.Errno // pending error of a connected socket (Linux's sk_err)
}

func newEndpoint(p *Protocol, local, remote netip.AddrPort) *endpoint {
	return &endpoint{
		p: p, local: local, remote: remote,
		rd: deadline.New(), wd: deadline.New(),
		readable: make(chan struct{}, 1),
		closedCh: make(chan struct{}),
		readBuf:  defaultReadBuffer,
	}
}

// signal hands readers the token if they have none.
func (e *endpoint) signal() {
	select {
	case e.readable <- struct{}{}:
	default:
	}
}

type deliverResult int

const (
	delivered deliverResult = iota
	queueFull
	endpointClosed
)

// deliver queues d for reading. It takes ownership of d.data. A full queue
// drops the datagram, as a full socket buffer does; a datagram larger than
// the whole buffer still gets into an empty queue (Linux checks the buffer
// before adding, so it too lets one through).
func (e *endpoint) deliver(d datagram) deliverResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return endpointClosed
	}
	c := d.charge()
	if e.head < len(e.queue) && e.queued+c > e.readBuf {
		return queueFull
	}
	if len(e.queue) == cap(e.queue) && e.head > 0 {
		n := copy(e.queue, e.queue[e.head:])
		clear(e.queue[n:])
		e.queue, e.head = e.queue[:n], 0
	}
	e.queue = append(e.queue, d)
	e.queued += c
	e.signal()
	return delivered
}

// read waits for a datagram, copies it into b (truncating, as recvmsg(2)
// without MSG_TRUNC does) and returns the bytes copied and the sender. Its
// errors are net.ErrClosed, os.ErrDeadlineExceeded or a pending ICMP error;
// conn.go wraps them in a *net.OpError.
func (e *endpoint) read(b []byte) (int, netip.AddrPort, error) {
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return 0, netip.AddrPort{}, net.ErrClosed
		}
		// As Go's poller does, a passed deadline fails the call even if
		// data is waiting.
		if e.rd.Passed() {
			e.mu.Unlock()
			return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
		}
		// Linux reports a pending error before queued data.
		if errno := e.err; errno != 0 {
			e.err = 0
			if e.head < len(e.queue) {
				e.signal()
			}
			e.mu.Unlock()
			return 0, netip.AddrPort{}, errno
		}
		if e.head < len(e.queue) {
			d := e.queue[e.head]
			e.queue[e.head] = datagram{}
			e.head++
			if e.head == len(e.queue) {
				e.queue, e.head = e.queue[:0], 0
			} else {
				e.signal()
			}
			e.queued -= d.charge()
			e.mu.Unlock()
			return copy(b, d.data), d.from, nil
		}
		e.mu.Unlock()
		select {
		case <-e.readable:
		case <-e.closedCh:
		case <-e.rd.Done():
		}
	}
}

// setError makes err the socket's pending error, reported by the next read
// or write, and wakes a reader.
func (e *endpoint) setError(err syscall.Errno) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.err = err
	e.signal()
}

// maxPayload is the most data one datagram carries: the UDP Length field's
// limit, and over IPv4 the Total Length field's (RFC 791, RFC 768).
func maxPayload(dst netip.Addr) int {
	if dst.Is4() {
		return wire.IPv4MaxTotalLen - wire.IPv4MinHeaderLen - wire.UDPHeaderLen
	}
	return wire.UDPMaxLength - wire.UDPHeaderLen
}

// send sends b as one datagram to "to". The data is copied: the caller may
// reuse b at once. Its errors are net.ErrClosed, os.ErrDeadlineExceeded, a
// pending ICMP error, or an errno (sendErrno); conn.go wraps them.
func (e *endpoint) send(b []byte, to netip.AddrPort) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return net.ErrClosed
	}
	// Sends never block: there is no send buffer to wait for. The write
	// deadline only fails a call made after it passed.
	if e.wd.Passed() {
		e.mu.Unlock()
		return os.ErrDeadlineExceeded
	}
	if errno := e.err; errno != 0 {
		// Linux's sendmsg(2) reports and clears a pending error
		// (sock_alloc_send_pskb) without sending.
		e.err = 0
		e.mu.Unlock()
		return errno
	}
	e.mu.Unlock()

	dst := to.Addr()
	if !dst.IsValid() || dst.IsUnspecified() || to.Port() == 0 {
		return syscall.EINVAL
	}
	la := e.local.Addr()
	if la.IsValid() && la.Is4() != dst.Is4() {
		return syscall.EAFNOSUPPORT
	}
	s := e.p.s
	path := e.path
	if to != e.remote {
		path = nil // an unconnected socket's: routed for this datagram only
	}
	var src netip.Addr
	var mtu int
	if path != nil {
		if err := path.Err(); err != nil {
			return sendErrno(err)
		}
		src, mtu = path.Src(), path.MTU()
	} else {
		var err error
		if src, mtu, err = s.Route(dst); err != nil {
			return sendErrno(err)
		}
		if la.IsValid() && !la.IsUnspecified() {
			src = la
		}
	}
	n := len(b)
	if n > maxPayload(dst) {
		return syscall.EMSGSIZE
	}
	if pmtu, ok := e.p.pmtu.get(s.Now(), dst); ok {
		mtu = min(mtu, pmtu)
	}
	// The stack never fragments (RFC 1191: every packet goes with DF), so a
	// datagram the path cannot take fails here, as with IP_PMTUDISC_DO.
	if stack.Headroom(dst)+wire.UDPHeaderLen+n > mtu {
		return syscall.EMSGSIZE
	}
	var pkt, payload []byte
	if path != nil {
		var hdr [wire.UDPHeaderLen]byte // Encode fills it in
		pkt, payload = path.BuildPacket(hdr[:], b, nil)
	} else {
		pkt, payload = s.NewPacket(src, dst, wire.ProtoUDP, 0, wire.UDPHeaderLen+n)
		copy(payload[wire.UDPHeaderLen:], b)
	}
	h := wire.UDPHeader{SrcPort: e.local.Port(), DstPort: to.Port()}
	h.Encode(payload, n, src, dst)
	var err error
	if path != nil {
		err = path.WritePacket(pkt)
	} else {
		err = s.WritePacket(dst, pkt)
	}
	if err != nil {
		return sendErrno(err)
	}
	e.p.stats.outDatagrams.Add(1)
	return nil
}

// close closes the socket: pending and later calls fail with net.ErrClosed.
// A second close returns net.ErrClosed, as (*net.UDPConn).Close does.
func (e *endpoint) close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return net.ErrClosed
	}
	e.closed = true
	clear(e.queue)
	e.queue, e.head, e.queued = nil, 0, 0
	close(e.closedCh)
	e.mu.Unlock()
	e.p.unbind(e)
	e.rd.Stop()
	e.wd.Stop()
	return nil
}

// setReadBuffer sets the receive buffer limit in bytes, clamped to
// [4 KiB, 16 MiB] as Linux clamps SO_RCVBUF to its own bounds.
func (e *endpoint) setReadBuffer(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.readBuf = min(max(n, minReadBuffer), maxReadBuffer)
}

// queuedBytes is the data waiting to be read.
func (e *endpoint) queuedBytes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, d := range e.queue[e.head:] {
		n += len(d.data)
	}
	return n
}
