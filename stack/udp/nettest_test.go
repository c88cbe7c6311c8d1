package udp_test

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"

	"golang.org/x/net/nettest"

	"github.com/labnet-dev/labnet/stack/udp"
)

// streamConn adapts a connected UDP socket to the two things
// nettest.TestConn asks of a stream that a datagram socket lacks: an end of
// stream (here an empty datagram, which Close sends and Read turns into
// io.EOF) and no loss (the lab's link loses nothing, and a large read buffer
// holds the megabyte BasicIO writes before it reads). Deadlines, Close
// unblocking calls, and concurrent use are the socket's own.
type streamConn struct {
	*udp.Conn
	once     *sync.Once
	closeErr *error
}

func newStreamConn(c *udp.Conn) streamConn {
	return streamConn{Conn: c, once: new(sync.Once), closeErr: new(error)}
}

func (c streamConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err == nil && n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, err
}

// Close sends the end of stream and closes the socket, once: BasicIO's
// writer closes its end while the pipe's stop function may already be
// closing it (the peer's EOF arrives, synchronously, before the socket is
// closed), and a stream's second Close would not fail that way.
func (c streamConn) Close() error {
	c.once.Do(func() {
		c.Conn.Write(nil)
		*c.closeErr = c.Conn.Close()
	})
	return *c.closeErr
}

func TestNetTestConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		l := newLab(t, 0)
		a := netip.AddrPortFrom(l.a.v4, 10000)
		b := netip.AddrPortFrom(l.b.v4, 20000)
		u1, err := l.a.udp.Dial(a, b)
		if err != nil {
			return nil, nil, nil, err
		}
		u2, err := l.b.udp.Dial(b, a)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, u := range []*udp.Conn{u1, u2} {
			u.SetReadBuffer(8 << 20)
		}
		s1, s2 := newStreamConn(u1), newStreamConn(u2)
		stop = func() {
			s1.Close()
			s2.Close()
			l.a.udp.Close()
			l.b.udp.Close()
		}
		return s1, s2, stop, nil
	})
}
