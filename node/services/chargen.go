package services

import (
	"io"
	"math/rand/v2"
	"net"
)

// RFC 864, Character Generator Protocol: "A character generator service
// simply sends data without regard to the input."
//
// The data is the RFC's "popular pattern": 72-character lines of the 95
// printing ASCII characters taken as a ring, line N starting with character
// N mod 95, each line ended by CR LF. The ring is ordered as in the RFC's
// example, whose line 0 starts with '!': '!' through '~', then space. (BSD
// inetd starts its ring with the space instead.)
const (
	chargenLineLen = 72
	chargenRingLen = 95
	// chargenPeriod is one whole turn of the pattern: after 95 lines it
	// starts again with line 0.
	chargenPeriod = chargenRingLen * (chargenLineLen + 2)
)

// chargenRing is the RFC 864 ring of printing characters.
var chargenRing = func() []byte {
	r := make([]byte, 0, chargenRingLen)
	for c := byte('!'); c <= '~'; c++ {
		r = append(r, c)
	}
	return append(r, ' ')
}()

// chargenStream is the start of the pattern, a whole number of periods
// (~62 KiB), so that writing it again and again continues the pattern.
var chargenStream = func() []byte {
	const periods = 9
	b := make([]byte, 0, periods*chargenPeriod)
	for line := range periods * chargenRingLen {
		for i := range chargenLineLen {
			b = append(b, chargenRing[(line+i)%chargenRingLen])
		}
		b = append(b, '\r', '\n')
	}
	return b
}()

// chargenMaxDatagram: RFC 864 "an answering datagram is sent containing a
// random number (between 0 and 512) of characters".
const chargenMaxDatagram = 512

func (s *Set) startChargen(n Net) error {
	if err := s.listenTCP(n, "chargen", portChargen, s.chargenConn); err != nil {
		return err
	}
	return s.listenUDP(n, "chargen", portChargen, chargenDatagram)
}

// chargenConn streams the pattern until the write fails: RFC 864 "Once a
// connection is established a stream of data is sent out the connection (and
// any data received is thrown away). This continues until the calling user
// terminates the connection." A client's FIN alone does not stop the stream;
// its close (the RST its stack answers our data with) does. TCP's flow
// control paces the stream to the reader.
func (s *Set) chargenConn(c net.Conn) (int64, error) {
	// Throw away what the client sends, so it never blocks on a full window.
	// The goroutine ends when the connection closes, after we return.
	s.wg.Go(func() { io.Copy(io.Discard, c) })
	var total int64
	for {
		n, err := c.Write(chargenStream)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// chargenDatagram answers with the first 0 to 512 characters of the pattern;
// RFC 864: "There is no history or state information associated with the UDP
// version of this service, so there is no continuity of data from one
// answering datagram to another."
func chargenDatagram(_, _ []byte) ([]byte, bool) {
	return chargenStream[:rand.IntN(chargenMaxDatagram+1)], true
}
