package overlay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Size limits of one send.
const (
	// MaxDatagramIPv4 and MaxDatagramIPv6 are the largest UDP payloads: what
	// the 16-bit IPv4 total length (IPv6 payload length) leaves after the
	// headers. A GENEVE packet, sealed or not, must fit; so must a GSO train,
	// which the kernel sends as one UDP datagram until it segments it.
	MaxDatagramIPv4 = 1<<16 - 1 - 20 - 8
	MaxDatagramIPv6 = 1<<16 - 1 - 8

	// maxSegments is UDP_MAX_SEGMENTS of the kernels labnet meets (64; newer
	// kernels allow more).
	maxSegments = 64
	// maxReadMsgs caps the datagrams (or coalesced trains) one recvmmsg
	// takes; each has a receive buffer of recvBufLen bytes.
	maxReadMsgs = 64
	recvBufLen  = 1 << 16

	// A read of at least detachMin bytes (a coalesced train, GRO) gives
	// its buffer away with its packets (Message.Detached) and reads on
	// into a new one, carved from slabs of recvSlabLen bytes.
	detachMin   = 16 << 10
	recvSlabLen = 16 * recvBufLen
)

// ErrTooBig is returned by WriteBatch for an empty datagram or one larger
// than MaxDatagramIPv4 (MaxDatagramIPv6) once sealed.
var ErrTooBig = errors.New("overlay: datagram empty or too big")

// Options configure a Conn. The zero value is a plain GENEVE socket that
// uses GSO and GRO where the kernel has them.
type Options struct {
	// Key seals every datagram sent and opens every datagram received; with
	// nil, datagrams are plain GENEVE.
	Key *Key
	// Peers, when not nil, seal per pair of nodes (pairseal.go): a
	// datagram to or from an address that Peers.ByAddr knows is sealed
	// and opened with that pair's keys, whatever Key is; other addresses
	// use Key (or nothing). So a cluster can mix nodes with certificates
	// and, in loopback development, nodes without.
	Peers Peers
	// Accept, when not nil, is asked about each received datagram's sender
	// before anything else is done with it; datagrams from senders it
	// refuses are dropped and counted (DroppedUnknownSender). It runs on the
	// receive path for every read, so it must be quick and must not block:
	// a lookup in a copy-on-write set of the cluster's overlay addresses.
	Accept func(from netip.AddrPort) bool
	// NoGSO and NoGRO take the fallback paths, sendmmsg and recvmmsg of
	// single datagrams, even where the kernel has UDP GSO and GRO.
	NoGSO, NoGRO bool
	// ReadBuffer and WriteBuffer set SO_RCVBUF and SO_SNDBUF, in bytes; 0
	// keeps the kernel's default. Beyond net.core.rmem_max (wmem_max) they
	// take effect only with CAP_NET_ADMIN. A receiver of bursts of trains
	// wants several MiB.
	ReadBuffer, WriteBuffer int
}

// Counters count a Conn's traffic since Listen. Datagrams and bytes are UDP
// payloads as on the wire (sealed, when there is a key), counted per
// datagram even when they travel in a GSO train or a GRO coalesced read.
// Calls are the batch system calls made (sendmmsg, recvmmsg), not counting
// the retries of the runtime's poller. A received datagram is either
// returned by ReadBatch or counted under exactly one Dropped reason.
type Counters struct {
	PacketsSent, BytesSent, SendCalls            uint64
	PacketsReceived, BytesReceived, ReceiveCalls uint64

	DroppedMalformed     uint64 // not GENEVE that labnet accepts (Header.Check), or too short to be sealed
	DroppedBadTag        uint64 // sealed under another key, altered, or not sealed at all
	DroppedUnknownSender uint64 // refused by Options.Accept, or sealed per pair under a sender id Peers does not know
	DroppedReplay        uint64 // sealed per pair with a counter already received (replay.go)
	DroppedTooOld        uint64 // sealed per pair with a counter below the sender's replay window
	// Refused by a Link's admit function (WithAdmit): the sender runs no
	// interface on the packet's network, or not with its source address.
	DroppedNotOnNetwork, DroppedSpoofedSource uint64
	// Undelivered counts datagrams a Link received whose next hop no
	// interface of this node owns (an unknown network, or an owner gone).
	Undelivered uint64

	// Packets a Link was asked to send and did not, by reason. The first
	// four were refused at once (the sender's interface counts them too);
	// TxSendFailed were queued and then refused by the kernel (sendmmsg
	// failed), too late to tell the sender.
	TxQueueFull  uint64 // the peer's send queue was full
	TxNoRoute    uint64 // the peer is no address of this socket's family, or not GENEVE the overlay carries
	TxTooBig     uint64 // larger than one datagram, once encapsulated (and sealed)
	TxDown       uint64 // the Link had stopped, or the Conn was closed
	TxSendFailed uint64 // queued, then refused by the kernel
}

// Message is one datagram returned by ReadBatch.
type Message struct {
	Addr netip.AddrPort // the sender
	// Packet is the GENEVE packet, opened if sealed; Check has passed, so
	// its accessors are safe. Unless Detached, it aliases the Conn's
	// receive buffers and is valid only until the next ReadBatch.
	Packet Header
	// Peer is the node that sealed the packet, when it came sealed per
	// pair (Options.Peers); nil otherwise.
	Peer *Peer
	// Detached says that Packet lies in a buffer the Conn has given up,
	// one a coalesced train (GRO) was read into: the caller may keep it
	// and write to it (but not beyond its length; its capacity ends with
	// it), and the packet is never copied. Small reads are not detached.
	Detached bool
}

// Conn is a UDP socket for the overlay. WriteBatch may be called from several
// goroutines at once; ReadBatch calls are serialised.
type Conn struct {
	uc          *net.UDPConn
	pc          batchConn
	local       netip.AddrPort
	is6         bool
	maxDatagram int
	key         *Key
	peers       Peers
	accept      func(netip.AddrPort) bool
	gso         atomic.Bool // turned off for good if the kernel refuses a train with EIO
	gro         bool

	sendStates sync.Pool // *sendState

	rxMu sync.Mutex
	rx   recvState

	stats struct {
		packetsSent, bytesSent, sendCalls atomic.Uint64
		packetsRecv, bytesRecv, recvCalls atomic.Uint64
		malformed, badTag, unknownSender  atomic.Uint64
		replay, tooOld                    atomic.Uint64
		notOnNetwork, spoofed             atomic.Uint64
		undelivered                       atomic.Uint64
		txQueueFull, txNoRoute, txTooBig  atomic.Uint64
		txDown, txSendFailed              atomic.Uint64
	}

	closeOnce sync.Once
	closeErr  error
}

// batchConn is ipv4.PacketConn or ipv6.PacketConn: both batch with
// sendmmsg/recvmmsg on Linux, and their Message types are the same type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// Listen opens the overlay socket on addr (port 0 picks one) and probes the
// kernel for UDP GSO and GRO unless opts turn them off.
func Listen(addr netip.AddrPort, opts Options) (*Conn, error) {
	a := addr.Addr().Unmap()
	if !a.IsValid() {
		return nil, fmt.Errorf("overlay: listen %v: not an address", addr)
	}
	network := "udp4"
	if a.Is6() {
		network = "udp6"
	}
	uc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, addr.Port())))
	if err != nil {
		return nil, err
	}
	fail := func(op string, err error) (*Conn, error) {
		uc.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: uc.LocalAddr(), Err: fmt.Errorf("%s: %w", op, err)}
	}
	if opts.ReadBuffer > 0 {
		if err := setSocketBuffer(uc, true, opts.ReadBuffer); err != nil {
			return fail("set receive buffer", err)
		}
	}
	if opts.WriteBuffer > 0 {
		if err := setSocketBuffer(uc, false, opts.WriteBuffer); err != nil {
			return fail("set send buffer", err)
		}
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return fail("raw conn", err)
	}
	c := &Conn{
		uc:          uc,
		is6:         a.Is6(),
		maxDatagram: MaxDatagramIPv4,
		key:         opts.Key,
		peers:       opts.Peers,
		accept:      opts.Accept,
	}
	local := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	c.local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	if c.is6 {
		c.pc = ipv6.NewPacketConn(uc)
		c.maxDatagram = MaxDatagramIPv6
	} else {
		c.pc = ipv4.NewPacketConn(uc)
	}
	gso, gro := probeOffload(rc, !opts.NoGSO, !opts.NoGRO)
	c.gso.Store(gso)
	c.gro = gro
	c.sendStates.New = func() any { return new(sendState) }
	return c, nil
}

// LocalAddr returns the address the socket is bound to.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// GSO reports whether WriteBatch sends trains with UDP GSO. It can turn false
// after Listen if the kernel refuses a train (see gsoFailed).
func (c *Conn) GSO() bool { return c.gso.Load() }

// GRO reports whether the socket receives coalesced trains (UDP GRO).
func (c *Conn) GRO() bool { return c.gro }

// SetReadDeadline sets the deadline for ReadBatch, as net.Conn does.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// Close closes the socket; a blocked ReadBatch returns an error that wraps
// net.ErrClosed. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.uc.Close() })
	return c.closeErr
}

// Counters returns the traffic counted so far.
func (c *Conn) Counters() Counters {
	s := &c.stats
	return Counters{
		PacketsSent: s.packetsSent.Load(), BytesSent: s.bytesSent.Load(), SendCalls: s.sendCalls.Load(),
		PacketsReceived: s.packetsRecv.Load(), BytesReceived: s.bytesRecv.Load(), ReceiveCalls: s.recvCalls.Load(),
		DroppedMalformed: s.malformed.Load(), DroppedBadTag: s.badTag.Load(), DroppedUnknownSender: s.unknownSender.Load(),
		DroppedReplay: s.replay.Load(), DroppedTooOld: s.tooOld.Load(),
		DroppedNotOnNetwork: s.notOnNetwork.Load(), DroppedSpoofedSource: s.spoofed.Load(),
		Undelivered: s.undelivered.Load(),
		TxQueueFull: s.txQueueFull.Load(), TxNoRoute: s.txNoRoute.Load(), TxTooBig: s.txTooBig.Load(),
		TxDown: s.txDown.Load(), TxSendFailed: s.txSendFailed.Load(),
	}
}

// A Datagram is one UDP payload in two parts, Head then Body: the GENEVE
// header and the IP packet it carries, which WriteDatagrams sends without
// joining them first (the kernel gathers the parts, scatter-gather I/O).
// Either part may be empty.
type Datagram struct{ Head, Body []byte }

func (d *Datagram) len() int { return len(d.Head) + len(d.Body) }

// sendState is one write's scratch, pooled.
type sendState struct {
	dgs   []Datagram // WriteBatch's packets as datagrams
	iov   [][]byte   // the parts of every datagram, in order
	dgIov []int      // datagram j's parts are iov[dgIov[j]:dgIov[j+1]]
	ms    []ipv4.Message
	first []int  // ms[i] carries datagrams first[i] to first[i]+segs[i]
	segs  []int  // datagrams in ms[i]
	sizes []int  // their size; all but the last of a train are this size
	arena []byte // sealed datagrams
	oob   []byte // UDP_SEGMENT control messages
	split []ipv4.Message
	to    *net.UDPAddr
	toAP  netip.AddrPort
}

// release drops the references to the caller's packets before the state
// goes back to the pool.
func (st *sendState) release() {
	clear(st.dgs)
	clear(st.iov)
	clear(st.ms)
	clear(st.split)
	st.dgs, st.iov, st.dgIov, st.ms, st.split = st.dgs[:0], st.iov[:0], st.dgIov[:0], st.ms[:0], st.split[:0]
	st.first, st.segs, st.sizes = st.first[:0], st.segs[:0], st.sizes[:0]
}

// WriteBatch sends pkts, each a GENEVE packet, as datagrams to dst: it is
// WriteDatagrams with each packet as a Body.
func (c *Conn) WriteBatch(dst netip.AddrPort, pkts [][]byte) error {
	st := c.sendStates.Get().(*sendState)
	defer c.sendStates.Put(st)
	defer st.release()
	for _, p := range pkts {
		st.dgs = append(st.dgs, Datagram{Body: p})
	}
	_, err := c.write(dst, st, st.dgs)
	return err
}

// WriteDatagrams sends dgs as datagrams to dst, in order, sealing them when
// the Conn has a key. It does not keep dgs after it returns. With GSO it
// cuts dgs into trains: a run of datagrams of one size, ended early by a
// shorter one, at most 64 datagrams and MaxDatagramIPv4 (IPv6) bytes, goes
// to the kernel as one message that it segments (UDP_SEGMENT in udp(7));
// several trains go in one sendmmsg. Without GSO every datagram is its own
// message of one sendmmsg. Unsealed datagrams are not copied: each message
// gathers its datagrams' parts (an iovec), so a train is read by the kernel
// straight from the caller's buffers. Sealing writes each datagram once,
// into a buffer of the Conn's. On error, some of dgs may have been sent.
func (c *Conn) WriteDatagrams(dst netip.AddrPort, dgs []Datagram) error {
	_, err := c.writeDatagrams(dst, dgs)
	return err
}

// writeDatagrams is WriteDatagrams, also returning how many of dgs were
// sent: on error, dgs[:n] were and the rest were not.
func (c *Conn) writeDatagrams(dst netip.AddrPort, dgs []Datagram) (int, error) {
	st := c.sendStates.Get().(*sendState)
	defer c.sendStates.Put(st)
	defer st.release()
	return c.write(dst, st, dgs)
}

// ErrNotPeer is returned by a write to an address no peer of the Conn can
// have: invalid, or of the other IP family than the socket's.
var ErrNotPeer = errors.New("not a peer address for this socket")

// peerAddr returns dst as the socket sends to it, or ErrNotPeer.
func (c *Conn) peerAddr(dst netip.AddrPort) (netip.AddrPort, error) {
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if !dst.IsValid() || dst.Addr().Is6() != c.is6 {
		return dst, fmt.Errorf("overlay: %v: %w on %v", dst, ErrNotPeer, c.local)
	}
	return dst, nil
}

// maxPayload is the longest datagram the Conn sends before sealing.
func (c *Conn) maxPayload() int {
	if c.key != nil || c.peers != nil {
		return c.maxDatagram - SealOverhead
	}
	return c.maxDatagram
}

func (c *Conn) write(dst netip.AddrPort, st *sendState, dgs []Datagram) (int, error) {
	if len(dgs) == 0 {
		return 0, nil
	}
	dst, err := c.peerAddr(dst)
	if err != nil {
		return 0, c.writeErr(dst, err)
	}
	var peer *Peer
	if c.peers != nil {
		peer = c.peers.ByAddr(dst)
	}
	sealed := peer != nil || c.key != nil
	overhead := 0
	if sealed {
		overhead = SealOverhead
	}
	total := 0
	for i := range dgs {
		n := dgs[i].len()
		if n == 0 || n+overhead > c.maxDatagram {
			return 0, c.writeErr(dst, fmt.Errorf("%w: %d bytes", ErrTooBig, n+overhead))
		}
		total += n + overhead
	}
	if st.toAP != dst || st.to == nil {
		st.to, st.toAP = net.UDPAddrFromAddrPort(dst), dst
	}

	// Every datagram's parts, in order: its own or, sealed, one piece of
	// the arena.
	if sealed {
		// One allocation up front, so appending never moves what earlier
		// datagrams point at.
		st.arena = slices.Grow(st.arena[:0], total)
	}
	for i := range dgs {
		st.dgIov = append(st.dgIov, len(st.iov))
		d := &dgs[i]
		if sealed {
			start := len(st.arena)
			if peer != nil {
				st.arena = peer.sealParts(st.arena, d.Head, d.Body)
			} else {
				st.arena = c.key.sealParts(st.arena, d.Head, d.Body)
			}
			st.iov = append(st.iov, st.arena[start:])
			continue
		}
		if len(d.Head) > 0 {
			st.iov = append(st.iov, d.Head)
		}
		if len(d.Body) > 0 {
			st.iov = append(st.iov, d.Body)
		}
	}
	st.dgIov = append(st.dgIov, len(st.iov))

	gso := c.gso.Load()
	for i := 0; i < len(dgs); {
		end := i + 1
		if gso {
			end = trainEnd(dgs, i, overhead, c.maxDatagram)
		}
		st.first = append(st.first, i)
		st.segs = append(st.segs, end-i)
		st.sizes = append(st.sizes, dgs[i].len()+overhead)
		i = end
	}
	st.oob = slices.Grow(st.oob[:0], len(st.segs)*gsoControlLen)
	for i, first := range st.first {
		m := ipv4.Message{Buffers: st.iov[st.dgIov[first]:st.dgIov[first+st.segs[i]]], Addr: st.to}
		if st.segs[i] > 1 {
			off := len(st.oob)
			st.oob = st.oob[:off+gsoControlLen]
			m.OOB = putGSOControl(st.oob[off:], st.sizes[i])
		}
		st.ms = append(st.ms, m)
	}
	sent, err := c.send(st)
	if err != nil {
		return sent, c.writeErr(dst, err)
	}
	return sent, nil
}

// trainEnd returns the end of the GSO train that starts at dgs[i]: udp(7),
// UDP_SEGMENT, asks that every segment but the last have the same size, and
// the last may be shorter. So the first datagram sets the size, a longer one
// starts the next train, and a shorter one is the last of this train. A train
// also ends at maxSegments datagrams and before its bytes pass maxBytes (the
// whole train is one UDP datagram until the kernel segments it).
// overhead is added to every length (sealing).
func trainEnd(dgs []Datagram, i, overhead, maxBytes int) int {
	size := dgs[i].len() + overhead
	bytes, j := 0, i
	for ; j < len(dgs) && j-i < maxSegments; j++ {
		s := dgs[j].len() + overhead
		if s > size || bytes+s > maxBytes {
			return j
		}
		bytes += s
		if s < size {
			return j + 1
		}
	}
	return j
}

// msgLen is the bytes of message i of st.
func (st *sendState) msgLen(i int) int {
	n := 0
	for _, b := range st.ms[i].Buffers {
		n += len(b)
	}
	return n
}

// send hands st's messages to the kernel, as many per sendmmsg as it takes,
// and returns how many datagrams went: on error, the ones before the first
// that did not.
func (c *Conn) send(st *sendState) (sent int, err error) {
	for i := 0; i < len(st.ms); {
		n, err := c.pc.WriteBatch(st.ms[i:], 0)
		c.stats.sendCalls.Add(1)
		if n == 0 && err == nil {
			err = io.ErrShortWrite // not seen from Linux; never spin on it
		}
		n = max(n, 0) // -1 on error
		var packets, bytes uint64
		for j := i; j < i+n; j++ {
			packets += uint64(st.segs[j])
			bytes += uint64(st.msgLen(j))
		}
		c.stats.packetsSent.Add(packets)
		c.stats.bytesSent.Add(bytes)
		sent += int(packets)
		i += n
		if err == nil {
			continue
		}
		// sendmmsg reports an error only when its first message failed:
		// here that is st.ms[i].
		if st.segs[i] > 1 {
			if retry, disable := gsoFailed(err); retry {
				if disable {
					c.gso.Store(false)
				}
				n, err := c.sendSegments(st, i)
				sent += n
				if err != nil {
					return sent, err
				}
				i++
				continue
			}
		}
		return sent, unwrapOpError(err)
	}
	return sent, nil
}

// sendSegments sends train i of st as separate datagrams, without GSO, and
// returns how many went.
func (c *Conn) sendSegments(st *sendState, i int) (int, error) {
	st.split = st.split[:0]
	for j := st.first[i]; j < st.first[i]+st.segs[i]; j++ {
		st.split = append(st.split, ipv4.Message{Buffers: st.iov[st.dgIov[j]:st.dgIov[j+1]], Addr: st.to})
	}
	for j := 0; j < len(st.split); {
		n, err := c.pc.WriteBatch(st.split[j:], 0)
		c.stats.sendCalls.Add(1)
		if n == 0 && err == nil {
			err = io.ErrShortWrite
		}
		for _, m := range st.split[j : j+max(n, 0)] {
			c.stats.packetsSent.Add(1)
			for _, b := range m.Buffers {
				c.stats.bytesSent.Add(uint64(len(b)))
			}
		}
		j += max(n, 0)
		if err != nil {
			return j, unwrapOpError(err)
		}
	}
	return len(st.split), nil
}

func (c *Conn) writeErr(dst netip.AddrPort, err error) error {
	return &net.OpError{Op: "write", Net: "udp", Source: net.UDPAddrFromAddrPort(c.local), Addr: net.UDPAddrFromAddrPort(dst), Err: err}
}

// unwrapOpError takes the cause out of x/net's *net.OpError so that ours,
// which names the peer, does not nest another.
func unwrapOpError(err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err
	}
	return err
}

// recvState is ReadBatch's receive buffers and the datagrams taken out of
// them but not yet returned.
type recvState struct {
	ms      []ipv4.Message
	oob     []byte
	pending []Message
	next    int
	slab    []byte // what is left of the slab new buffers come from
}

// newBuffer returns a receive buffer of recvBufLen bytes.
func (rx *recvState) newBuffer() []byte {
	if len(rx.slab) < recvBufLen {
		rx.slab = make([]byte, recvSlabLen)
	}
	b := rx.slab[:recvBufLen:recvBufLen]
	rx.slab = rx.slab[recvBufLen:]
	return b
}

// grow makes sure there are k messages with their buffers.
func (rx *recvState) grow(k int) {
	for len(rx.ms) < k {
		rx.ms = append(rx.ms, ipv4.Message{Buffers: [][]byte{rx.newBuffer()}})
	}
	if len(rx.oob) < len(rx.ms)*groControlLen {
		rx.oob = make([]byte, len(rx.ms)*groControlLen)
	}
}

// ReadBatch waits for datagrams and fills msgs with up to len(msgs) of them,
// in the order they arrived, returning how many. Datagrams that are not
// accepted are dropped and counted (see Counters) and never returned; it
// keeps waiting until at least one is good, the read deadline passes or the
// Conn is closed. The returned packets alias the Conn's buffers until the
// next ReadBatch.
func (c *Conn) ReadBatch(msgs []Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	rx := &c.rx
	for rx.next == len(rx.pending) {
		if err := c.fill(min(len(msgs), maxReadMsgs)); err != nil {
			return 0, err
		}
	}
	n := copy(msgs, rx.pending[rx.next:])
	rx.next += n
	return n, nil
}

// fill reads up to k messages with one recvmmsg and sorts the datagrams in
// them into pending and drops.
func (c *Conn) fill(k int) error {
	rx := &c.rx
	rx.grow(k)
	ms := rx.ms[:k]
	for i := range ms {
		ms[i].OOB = rx.oob[i*groControlLen : (i+1)*groControlLen]
		ms[i].Addr = nil
	}
	n, err := c.pc.ReadBatch(ms, 0)
	c.stats.recvCalls.Add(1)
	if err != nil {
		return err
	}
	clear(rx.pending) // drop references to the previous datagrams' senders
	rx.pending, rx.next = rx.pending[:0], 0
	var packets, bytes, malformed, badTag, unknown, replay, tooOld uint64
	for i := range ms[:n] {
		m := &ms[i]
		buf := m.Buffers[0][:m.N]
		detach := m.N >= detachMin
		if detach {
			m.Buffers[0] = rx.newBuffer() // buf goes with its packets
		}
		var from netip.AddrPort
		if ua, ok := m.Addr.(*net.UDPAddr); ok {
			from = ua.AddrPort()
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		}
		if m.Flags&msgTrunc != 0 || len(buf) == 0 {
			// Larger than any datagram labnet sends, or empty.
			packets++
			bytes += uint64(len(buf))
			malformed++
			continue
		}
		size := len(buf) // udp(7), UDP_GRO: a coalesced read holds datagrams of size bytes, the last maybe shorter
		if c.gro {
			if s := groSize(m.OOB[:m.NN]); s > 0 {
				size = s
			}
		}
		accepted := c.accept == nil || c.accept(from)
		var pairs Peers
		if c.peers != nil && c.peers.ByAddr(from) != nil {
			pairs = c.peers
		}
		for off := 0; off < len(buf); off += size {
			end := min(off+size, len(buf))
			d := buf[off:end:end]
			packets++
			bytes += uint64(len(d))
			if !accepted {
				unknown++
				continue
			}
			var peer *Peer
			if pairs != nil {
				var v openVerdict
				d, peer, v = openPair(pairs, d)
				switch v {
				case openMalformed:
					malformed++
					continue
				case openUnknownSender:
					unknown++
					continue
				case openReplay:
					replay++
					continue
				case openTooOld:
					tooOld++
					continue
				case openBadTag:
					badTag++
					continue
				}
			} else if c.key != nil {
				if len(d) < SealOverhead {
					malformed++
					continue
				}
				var err error
				if d, err = c.key.Open(d[NonceSize:NonceSize], d); err != nil {
					badTag++
					continue
				}
			}
			if Header(d).Check() != nil {
				malformed++
				continue
			}
			rx.pending = append(rx.pending, Message{Addr: from, Packet: Header(d), Peer: peer, Detached: detach})
		}
	}
	s := &c.stats
	s.packetsRecv.Add(packets)
	s.bytesRecv.Add(bytes)
	s.malformed.Add(malformed)
	s.badTag.Add(badTag)
	s.unknownSender.Add(unknown)
	s.replay.Add(replay)
	s.tooOld.Add(tooOld)
	return nil
}
