package services

import (
	"io"
	"net"
)

// RFC 862, Echo Protocol: "A very useful debugging and measurement tool is
// an echo service. An echo service simply sends back to the originating
// source any data it receives."

func (s *Set) startEcho(n Net) error {
	if err := s.listenTCP(n, "echo", portEcho, echoConn); err != nil {
		return err
	}
	return s.listenUDP(n, "echo", portEcho, echoDatagram)
}

// echoConn sends back what it reads until the client stops sending (RFC 862:
// "Once a connection is established any data received is sent back. This
// continues until the calling user terminates the connection."). After a
// half-close it finishes sending what it read, then closes.
func echoConn(c net.Conn) (int64, error) {
	return io.CopyBuffer(c, c, make([]byte, 32<<10))
}

// echoDatagram: RFC 862 "When a datagram is received, the data from it is
// sent back in an answering datagram."
func echoDatagram(req, _ []byte) ([]byte, bool) { return req, true }
