package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// The byte streams of port-forward, socks and expose: a real TCP connection
// on this machine joined to a virtual one made or accepted by a host
// (lab.v1.SocketService).

func (a *app) sockets() (labv1.SocketServiceClient, error) {
	if err := a.connect(); err != nil {
		return nil, err
	}
	return labv1.NewSocketServiceClient(a.conn), nil
}

// socketResponse is what DialResponse and AcceptResponse have in common.
type socketResponse interface {
	GetOpened() *labv1.SocketOpened
	GetData() []byte
	GetEof() *labv1.SocketEOF
}

// socketStream is a Dial or Accept call.
type socketStream[Req any, Resp socketResponse] interface {
	Send(*Req) error
	Recv() (Resp, error)
	CloseSend() error
}

// virtualConn is one end of a Dial or Accept call.
type virtualConn[Req any, Resp socketResponse] struct {
	stream socketStream[Req, Resp]
	data   func([]byte) *Req
	cancel context.CancelFunc
}

// open sends the first request and waits for opened.
func (v *virtualConn[Req, Resp]) open(first *Req) (*labv1.SocketOpened, error) {
	if err := v.stream.Send(first); err != nil {
		// The call's status comes from Recv.
		if _, rerr := v.stream.Recv(); rerr != nil {
			err = rerr
		}
		return nil, err
	}
	m, err := v.stream.Recv()
	if err != nil {
		return nil, err
	}
	if m.GetOpened() == nil {
		return nil, errors.New("labd did not open the connection")
	}
	return m.GetOpened(), nil
}

// bridge carries bytes between a real connection and the virtual one until
// both directions are done: a FIN on either side becomes a half-close on
// the other, and a reset (or any failure) on either side resets the other.
// It closes local and ends the call; the error says why the connection was
// reset, nil when it ended cleanly.
func bridge[Req any, Resp socketResponse](local *net.TCPConn, v *virtualConn[Req, Resp]) error {
	defer v.cancel()
	done := make(chan error, 2)
	go func() { done <- sendLocal(local, v) }()
	go func() { done <- receiveVirtual(local, v) }()
	for range 2 {
		if err := <-done; err != nil {
			local.SetLinger(0) // close with a RST
			local.Close()
			v.cancel() // the virtual connection is reset too
			return err
		}
	}
	return local.Close()
}

// sendLocal sends what local receives to the virtual connection, then
// half-closes it.
func sendLocal[Req any, Resp socketResponse](local *net.TCPConn, v *virtualConn[Req, Resp]) error {
	buf := make([]byte, 256<<10)
	for {
		n, err := local.Read(buf)
		if n > 0 {
			if v.stream.Send(v.data(append([]byte(nil), buf[:n]...))) != nil {
				return nil // the call's end comes from Recv
			}
		}
		if errors.Is(err, io.EOF) {
			return v.stream.CloseSend()
		}
		if err != nil {
			return err
		}
	}
}

// receiveVirtual writes what the virtual connection receives to local, and
// half-closes local after the virtual peer's FIN.
func receiveVirtual[Req any, Resp socketResponse](local *net.TCPConn, v *virtualConn[Req, Resp]) error {
	for {
		m, err := v.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if d := m.GetData(); len(d) > 0 {
			if _, err := local.Write(d); err != nil {
				return err
			}
		}
		if m.GetEof() != nil {
			local.CloseWrite()
		}
	}
}

// dial opens a virtual TCP connection from host to addr.
func (a *app) dial(ctx context.Context, host, addr string) (*virtualConn[labv1.DialRequest, *labv1.DialResponse], *labv1.SocketOpened, error) {
	sc, err := a.sockets()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	st, err := sc.Dial(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	v := &virtualConn[labv1.DialRequest, *labv1.DialResponse]{stream: st, cancel: cancel, data: func(b []byte) *labv1.DialRequest {
		return &labv1.DialRequest{Event: &labv1.DialRequest_Data{Data: b}}
	}}
	opened, err := v.open(&labv1.DialRequest{Event: &labv1.DialRequest_Open{Open: &labv1.DialOpen{Host: host, Address: addr}}})
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return v, opened, nil
}

// connLog writes one line per connection event to stderr, whole lines from
// concurrent connections.
type connLog struct {
	a  *app
	mu sync.Mutex
}

func (l *connLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.a.stderr, format+"\n", args...)
}

// reason is an error of a connection as one short phrase.
func (l *connLog) reason(err error) string {
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return oneLine(st.Message())
	}
	if msg, ok := l.a.rpcErrorMessage(err); ok {
		return msg
	}
	return oneLine(err.Error())
}

// listenLocal listens on address:port for a command's flag or argument.
func listenLocal(what, addr string) (*net.TCPListener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
		}
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "bind: ")
		return nil, fmt.Errorf("%s: cannot listen on %s: %s", what, addr, msg)
	}
	return l.(*net.TCPListener), nil
}

// serve accepts connections on l until ctx is done, handling each in its
// own goroutine, and waits for them when it returns.
func serve(ctx context.Context, l *net.TCPListener, handle func(*net.TCPConn)) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Go(func() {
			// Ctrl-C resets the connections still open.
			stop := context.AfterFunc(ctx, func() { c.SetLinger(0); c.Close() })
			defer stop()
			handle(c)
		})
	}
}
