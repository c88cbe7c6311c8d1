package services

import (
	"errors"
	"io"
	"net"
	"sync"
)

// RFC 863, Discard Protocol: "A discard service simply throws away any data
// it receives." It is the sink of labctl bench, so it reads as fast as it
// can.

func (s *Set) startDiscard(n Net) error {
	if err := s.listenTCP(n, "discard", portDiscard, discardConn); err != nil {
		return err
	}
	return s.listenUDP(n, "discard", portDiscard, discardDatagram)
}

// discardBufSize is large so that one Read drains a whole receive window of
// a fast sender.
const discardBufSize = 256 << 10

var discardBufs = sync.Pool{New: func() any { b := make([]byte, discardBufSize); return &b }}

// discardConn reads and drops until the client closes (RFC 863: "any data
// received is thrown away. No response is sent. This continues until the
// calling user terminates the connection."), then closes its side too.
func discardConn(c net.Conn) (int64, error) {
	buf := discardBufs.Get().(*[]byte)
	defer discardBufs.Put(buf)
	var total int64
	for {
		n, err := c.Read(*buf)
		total += int64(n)
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// discardDatagram: RFC 863 "When a datagram is received, it is thrown away.
// No response is sent."
func discardDatagram(_, _ []byte) ([]byte, bool) { return nil, false }
