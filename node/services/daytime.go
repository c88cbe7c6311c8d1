package services

import (
	"net"
	"time"
)

// RFC 867, Daytime Protocol: the server sends "the current date and time as
// a character string without regard to the input". The RFC leaves the syntax
// open ("there is no specific syntax for the daytime"); we send RFC 1123's
// form in UTC, so every node of a lab says the same thing, then CR LF:
// "Thu, 29 Feb 2024 13:37:42 UTC\r\n".

func (s *Set) startDaytime(n Net) error {
	if err := s.listenTCP(n, "daytime", portDaytime, s.daytimeConn); err != nil {
		return err
	}
	return s.listenUDP(n, "daytime", portDaytime, s.daytimeDatagram)
}

func (s *Set) daytime(buf []byte) []byte {
	return append(s.now().UTC().AppendFormat(buf[:0], time.RFC1123), '\r', '\n')
}

// daytimeConn: RFC 867 "Once a connection is established the current date
// and time is sent out the connection as a ascii character string (and any
// data received is thrown away). The service closes the connection after
// sending the quote."
func (s *Set) daytimeConn(c net.Conn) (int64, error) {
	n, err := c.Write(s.daytime(nil))
	return int64(n), err
}

// daytimeDatagram: RFC 867 "When a datagram is received, an answering
// datagram is sent containing the current date and time as a ASCII character
// string (the data in the received datagram is ignored)."
func (s *Set) daytimeDatagram(_, buf []byte) ([]byte, bool) {
	return s.daytime(buf), true
}
