package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Limits of the socket calls.
const (
	defaultDialTimeout = 10 * time.Second
	maxDialTimeout     = 5 * time.Minute
	// acceptWait is how long a connection announced by Expose waits for
	// Accept before it is reset.
	acceptWait = 10 * time.Second
	// chunk is the most bytes one data message carries.
	chunk = 256 << 10
)

// socketServer serves lab.v1.SocketService: the byte streams behind labctl
// port-forward, socks and expose.
type socketServer struct {
	labv1.UnimplementedSocketServiceServer
	*Server

	nextID  atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]*pendingConn // announced by Expose, waiting for Accept
}

// pendingConn is a connection accepted on an exposed port.
type pendingConn struct {
	host  string
	conn  net.Conn
	timer *time.Timer
	from  net.Listener // the Expose call's
}

func newSocketServer(s *Server) *socketServer {
	return &socketServer{Server: s, pending: map[uint64]*pendingConn{}}
}

// forwardBidi serves a bidirectional socket call on the node that runs
// host, when that is another node: first is the request already read. It
// reports whether it did, and how the forwarded call ended.
func forwardBidi[Req, Resp any](s *Server, stream grpc.BidiStreamingServer[Req, Resp], host string, first *Req,
	call func(labv1.SocketServiceClient, context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[Req, Resp], error)) (bool, error) {
	conn, fctx, err := s.forwardConn(stream.Context(), host)
	if err != nil || conn == nil {
		return err != nil, err
	}
	// Cancelling fctx (when this call ends or fails, or labd shuts down)
	// resets the forwarded one, and with it the connection it carries.
	fctx, cancel := s.untilStop(fctx)
	defer cancel()
	peer, err := call(labv1.NewSocketServiceClient(conn), fctx)
	if err != nil {
		return true, err
	}
	go func() {
		m := first
		for peer.Send(m) == nil { // else the peer's status comes out of Recv below
			var err error
			if m, err = stream.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					peer.CloseSend()
				} else {
					cancel()
				}
				return
			}
		}
	}()
	// The peer ends the call once both directions are done: a Recv of
	// the goroutine still waiting ends with this call.
	return true, relay(peer.Recv, stream.Send)
}

// openCall reads a socket call's first message, which must be open, and
// forwards the call when its host runs on another node; done says the call
// is over (forwarded, or failed with err).
func openCall[Req, Resp any, Open interface {
	comparable
	GetHost() string
}](s *Server, stream grpc.BidiStreamingServer[Req, Resp], get func(*Req) Open,
	call func(labv1.SocketServiceClient, context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[Req, Resp], error)) (open Open, done bool, err error) {
	first, err := stream.Recv()
	if err != nil {
		return open, true, err
	}
	var none Open
	if open = get(first); open == none {
		return open, true, invalid("open", "the first message must be open")
	}
	done, err = forwardBidi(s, stream, open.GetHost(), first, call)
	return open, done, err
}

// untilStop is ctx, cancelled also when labd shuts down (Stop): long-lived
// socket calls end then rather than hold up a graceful shutdown.
// Its cause is then errShuttingDown.
func (s *Server) untilStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-s.stopping:
			cancel(errShuttingDown)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

var errShuttingDown = status.Error(codes.Unavailable, "labd is shutting down")

// addrPort resolves "ADDRESS:PORT" or "NAME:PORT" (a host of host's lab)
// for request field field.
func (s *Server) addrPort(field, host, addr string) (netip.AddrPort, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, invalid(field, "%q is not ADDRESS:PORT or NAME:PORT", addr)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, invalid(field, "%q: port %q is not 1-65535", addr, p)
	}
	ip, err := s.resolve(field, host, h, false)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// Dial opens a TCP connection from a host and carries its bytes.
func (ss *socketServer) Dial(stream labv1.SocketService_DialServer) error {
	open, done, err := openCall(ss.Server, stream, (*labv1.DialRequest).GetOpen, labv1.SocketServiceClient.Dial)
	if done {
		return err
	}
	_, h, err := ss.liveHost("open.host", open.Host)
	if err != nil {
		return err
	}
	dst, err := ss.addrPort("open.address", open.Host, open.Address)
	if err != nil {
		return err
	}
	timeout := durationOr(open.Timeout, defaultDialTimeout)
	if timeout <= 0 || timeout > maxDialTimeout {
		return invalid("open.timeout", "%v is outside (0, %v]", timeout, maxDialTimeout)
	}
	ctx, cancel := context.WithTimeout(stream.Context(), timeout)
	c, err := h.DialTCP(ctx, dst)
	cancel()
	if err != nil {
		return status.Errorf(codes.Unavailable, "connect to %s: %v", dst, connectError(err))
	}
	return carry(ss.Server, c, stream, (*labv1.DialRequest).GetData, func(o *labv1.SocketOpened, data []byte) *labv1.DialResponse {
		switch {
		case o != nil:
			return &labv1.DialResponse{Event: &labv1.DialResponse_Opened{Opened: o}}
		case data != nil:
			return &labv1.DialResponse{Event: &labv1.DialResponse_Data{Data: data}}
		}
		return &labv1.DialResponse{Event: &labv1.DialResponse_Eof{Eof: &labv1.SocketEOF{}}}
	})
}

// carry sends opened, then carries c's bytes (pump). msg makes the
// response that says opened (o set), carries data (data set) or eof
// (neither). carry owns c.
func carry[Req, Resp any](s *Server, c net.Conn, stream grpc.BidiStreamingServer[Req, Resp], data func(*Req) []byte,
	msg func(o *labv1.SocketOpened, data []byte) *Resp) error {
	// labd shutting down resets the connection rather than wait for it.
	ctx, cancel := s.untilStop(stream.Context())
	defer cancel()
	opened := &labv1.SocketOpened{LocalAddress: c.LocalAddr().String(), RemoteAddress: c.RemoteAddr().String()}
	if err := stream.Send(msg(opened, nil)); err != nil {
		reset(c)
		return err
	}
	return pump(ctx, c, byteStream{
		recv: func() ([]byte, error) {
			m, err := stream.Recv()
			if err != nil {
				return nil, err
			}
			return data(m), nil
		},
		data: func(b []byte) error { return stream.Send(msg(nil, b)) },
		eof:  func() error { return stream.Send(msg(nil, nil)) },
	})
}

// connectError is the reason a connection failed, without the *net.OpError
// wrapping that repeats the addresses.
func connectError(err error) error {
	var oe *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("timed out")
	case errors.As(err, &oe):
		return oe.Err
	}
	return err
}

// byteStream is one side of a socket call: the client's data, and how to
// send it data and the end of the peer's.
type byteStream struct {
	recv func() ([]byte, error) // io.EOF after the client's CloseSend
	data func([]byte) error
	eof  func() error
}

// pump carries bytes between c and the call until both directions have
// ended: the client's CloseSend half-closes c (FIN), and the peer's FIN is
// sent as eof. A call that fails or is cancelled resets c; a reset of c
// ends the call with ABORTED. pump owns c.
func pump(ctx context.Context, c net.Conn, bs byteStream) error {
	// A cancelled call resets c even while both directions wait on it (a
	// silent peer that does not read either).
	stop := context.AfterFunc(ctx, func() { reset(c) })
	defer stop()
	up, down := make(chan error, 1), make(chan error, 1)
	go func() { up <- copyUp(c, bs) }()
	go func() { down <- copyDown(ctx, c, bs) }()
	// Either side failing resets the connection. Nothing may send on the
	// stream once the call has ended, so a failed upstream waits for
	// copyDown, which the reset ends; a Recv still waiting in copyUp
	// returns when the call ends.
	select {
	case err := <-up:
		if err != nil {
			reset(c)
			<-down
			return err
		}
		if err := <-down; err != nil {
			reset(c)
			return err
		}
	case err := <-down:
		if err == nil {
			select {
			case err = <-up:
			case <-ctx.Done(): // copyUp may wait in Recv
				err = context.Cause(ctx)
			}
		}
		if err != nil {
			reset(c)
			return err
		}
	}
	return c.Close()
}

// copyUp writes the client's data to c, then half-closes c.
func copyUp(c net.Conn, bs byteStream) error {
	for {
		b, err := bs.recv()
		if errors.Is(err, io.EOF) {
			return closeWrite(c)
		}
		if err != nil {
			return err
		}
		if _, err := c.Write(b); err != nil {
			return nil // copyDown reports what happened to c
		}
	}
}

// copyDown sends what c receives to the client, then eof.
func copyDown(ctx context.Context, c net.Conn, bs byteStream) error {
	buf := make([]byte, chunk)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			// A message must not change once sent: each gets its own bytes.
			if err := bs.data(append([]byte(nil), buf[:n]...)); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, io.EOF) && ctx.Err() != nil:
			return context.Cause(ctx) // pump reset c: not the peer's FIN
		case errors.Is(err, io.EOF):
			return bs.eof()
		case errors.Is(err, syscall.ECONNRESET):
			return status.Error(codes.Aborted, "connection reset by peer")
		case errors.Is(err, net.ErrClosed):
			return status.Error(codes.Aborted, "connection closed")
		case err != nil:
			return status.Errorf(codes.Aborted, "%v", connectError(err))
		}
	}
}

// Expose listens on a host's port and announces each connection.
func (ss *socketServer) Expose(req *labv1.ExposeRequest, stream labv1.SocketService_ExposeServer) error {
	ctx := stream.Context()
	if conn, fctx, err := ss.forwardConn(ctx, req.Host); err != nil || conn != nil {
		if err != nil {
			return err
		}
		fctx, cancel := ss.untilStop(fctx)
		defer cancel()
		st, err := labv1.NewSocketServiceClient(conn).Expose(fctx, req)
		if err != nil {
			return err
		}
		return relay(st.Recv, stream.Send)
	}
	_, h, err := ss.liveHost("host", req.Host)
	if err != nil {
		return err
	}
	if req.Port == 0 || req.Port > 65535 {
		return invalid("port", "%d is not 1-65535", req.Port)
	}
	l, err := h.ListenTCP(netip.AddrPortFrom(netip.Addr{}, uint16(req.Port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return status.Errorf(codes.FailedPrecondition, "port %d of host %s is in use", req.Port, lab.ID(req.Host))
		}
		return status.Errorf(codes.Unavailable, "listen on port %d: %v", req.Port, err)
	}
	defer l.Close()
	// The call ending, or labd shutting down, closes the listener.
	ctx, cancel := ss.untilStop(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer func() {
		// Connections nobody took are reset when the listener goes.
		ss.mu.Lock()
		defer ss.mu.Unlock()
		for id, p := range ss.pending {
			if p.from == l {
				delete(ss.pending, id)
				p.timer.Stop()
				reset(p.conn)
			}
		}
	}()
	if err := stream.Send(&labv1.ExposeResponse{Event: &labv1.ExposeResponse_Listening{Listening: &labv1.ExposeListening{
		Address: l.Addr().String(),
	}}}); err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-ss.stopping:
				return errShuttingDown
			default:
			}
			if ctx.Err() != nil {
				return nil
			}
			return status.Errorf(codes.Unavailable, "accept: %v", err)
		}
		id := ss.nextID.Add(1)
		p := &pendingConn{host: req.Host, conn: c, from: l}
		ss.mu.Lock()
		ss.pending[id] = p
		p.timer = time.AfterFunc(acceptWait, func() {
			if p := ss.take(id, req.Host); p != nil {
				reset(p.conn)
			}
		})
		ss.mu.Unlock()
		if err := stream.Send(&labv1.ExposeResponse{Event: &labv1.ExposeResponse_Connection{Connection: &labv1.ExposeConnection{
			Id: id, LocalAddress: c.LocalAddr().String(), RemoteAddress: c.RemoteAddr().String(),
		}}}); err != nil {
			return err
		}
	}
}

// take removes connection id of host from the pending ones; nil when it is
// not waiting.
func (ss *socketServer) take(id uint64, host string) *pendingConn {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	p := ss.pending[id]
	if p == nil || p.host != host {
		return nil
	}
	delete(ss.pending, id)
	p.timer.Stop()
	return p
}

// reset aborts c with a RST (LiveHost's connections have SetLinger).
func reset(c net.Conn) {
	if l, ok := c.(interface{ SetLinger(sec int) error }); ok {
		l.SetLinger(0)
	}
	c.Close()
}

// closeWrite half-closes c: sends its FIN (LiveHost's connections have
// CloseWrite).
func closeWrite(c net.Conn) error {
	hc, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return status.Errorf(codes.Internal, "%T cannot half-close", c)
	}
	return hc.CloseWrite()
}

// udpConn is what Datagrams needs of LiveHost's UDP sockets, as
// *net.UDPConn has it.
type udpConn interface {
	net.PacketConn
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// Accept carries a connection announced by Expose.
func (ss *socketServer) Accept(stream labv1.SocketService_AcceptServer) error {
	open, done, err := openCall(ss.Server, stream, (*labv1.AcceptRequest).GetOpen, labv1.SocketServiceClient.Accept)
	if done {
		return err
	}
	if _, _, err := ss.liveHost("open.host", open.Host); err != nil {
		return err
	}
	p := ss.take(open.Connection, open.Host)
	if p == nil {
		return status.Errorf(codes.NotFound, "connection %d of host %s is not waiting: taken, reset after %v, or its expose ended", open.Connection, lab.ID(open.Host), acceptWait)
	}
	c := p.conn
	if open.Reject {
		reset(c)
		return nil
	}
	return carry(ss.Server, c, stream, (*labv1.AcceptRequest).GetData, func(o *labv1.SocketOpened, data []byte) *labv1.AcceptResponse {
		switch {
		case o != nil:
			return &labv1.AcceptResponse{Event: &labv1.AcceptResponse_Opened{Opened: o}}
		case data != nil:
			return &labv1.AcceptResponse{Event: &labv1.AcceptResponse_Data{Data: data}}
		}
		return &labv1.AcceptResponse{Event: &labv1.AcceptResponse_Eof{Eof: &labv1.SocketEOF{}}}
	})
}

// Datagrams opens a UDP socket on a host and carries its datagrams.
func (ss *socketServer) Datagrams(stream labv1.SocketService_DatagramsServer) error {
	open, done, err := openCall(ss.Server, stream, (*labv1.DatagramsRequest).GetOpen, labv1.SocketServiceClient.Datagrams)
	if done {
		return err
	}
	_, h, err := ss.liveHost("open.host", open.Host)
	if err != nil {
		return err
	}
	if open.Port > 65535 {
		return invalid("open.port", "%d is above 65535", open.Port)
	}
	// The zero address takes datagrams to every address of both families.
	sock, err := h.ListenUDP(netip.AddrPortFrom(netip.Addr{}, uint16(open.Port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return status.Errorf(codes.FailedPrecondition, "UDP port %d of host %s is in use", open.Port, lab.ID(open.Host))
		}
		return status.Errorf(codes.Unavailable, "%v", err)
	}
	defer sock.Close()
	pc, ok := sock.(udpConn)
	if !ok {
		return status.Errorf(codes.Internal, "%T has no ReadFromUDPAddrPort", sock)
	}
	if err := stream.Send(&labv1.DatagramsResponse{Event: &labv1.DatagramsResponse_Opened{Opened: &labv1.SocketOpened{
		LocalAddress: pc.LocalAddr().String(),
	}}}); err != nil {
		return err
	}
	down := make(chan error, 1)
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				down <- nil // closed: the call is ending
				return
			}
			d := &labv1.Datagram{Address: from.String(), Data: append([]byte(nil), buf[:n]...)}
			if err := stream.Send(&labv1.DatagramsResponse{Event: &labv1.DatagramsResponse_Datagram{Datagram: d}}); err != nil {
				down <- err
				return
			}
		}
	}()
	up := make(chan error, 1)
	go func() { up <- ss.sendDatagrams(stream, open.Host, pc) }()
	select {
	case err = <-up:
	case <-ss.stopping:
		// A Recv still waiting in sendDatagrams returns with the call.
		err = errShuttingDown
	}
	pc.Close()
	if derr := <-down; err == nil {
		err = derr
	}
	return err
}

// sendDatagrams sends the client's datagrams until it closes its side.
// UDP is unreliable: a datagram the host cannot send (no route, too big
// for the path) is dropped, as the kernel drops it for a UDP socket.
func (ss *socketServer) sendDatagrams(stream labv1.SocketService_DatagramsServer, host string, pc interface {
	WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
}) error {
	names := map[string]netip.AddrPort{}
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		d := m.GetDatagram()
		if d == nil {
			return invalid("datagram", "every message after open must be a datagram")
		}
		if len(d.Data) > 65507 {
			return invalid("datagram.data", "%d bytes is above 65507", len(d.Data))
		}
		dst, ok := names[d.Address]
		if !ok {
			if dst, err = ss.addrPort("datagram.address", host, d.Address); err != nil {
				return err
			}
			if len(names) < 1024 {
				names[d.Address] = dst
			}
		}
		pc.WriteToUDPAddrPort(d.Data, dst)
	}
}
