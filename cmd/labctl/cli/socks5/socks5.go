// Package socks5 is the server side of the SOCKS protocol version 5 (RFC
// 1928) without authentication: the method negotiation, the CONNECT and
// UDP ASSOCIATE requests and their replies, and the header of relayed UDP
// datagrams. BIND is refused. It parses untrusted bytes (anything that
// connects to the proxy), so every length is checked before use.
package socks5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// RFC 1928 §3, §4: the version byte, the methods, the commands and the
// address types.
const (
	Version = 0x05

	MethodNoAuth       = 0x00
	MethodNoAcceptable = 0xFF

	CmdConnect      = 0x01
	CmdBind         = 0x02
	CmdUDPAssociate = 0x03

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04
)

// Reply codes, RFC 1928 §6.
const (
	RepSucceeded          = 0x00
	RepGeneralFailure     = 0x01
	RepNotAllowed         = 0x02
	RepNetworkUnreachable = 0x03
	RepHostUnreachable    = 0x04
	RepConnectionRefused  = 0x05
	RepTTLExpired         = 0x06
	RepCommandUnsupported = 0x07
	RepAddressUnsupported = 0x08
)

// Errors of malformed input.
var (
	ErrVersion = errors.New("socks5: not SOCKS version 5")
	ErrNoAuth  = errors.New("socks5: the client does not offer \"no authentication\"")
	ErrAddress = errors.New("socks5: unknown address type")
	ErrShort   = errors.New("socks5: datagram too short")
)

// Addr is a SOCKS address: an IP address, or a domain name left for the
// proxy to resolve (socks5h), with a port.
type Addr struct {
	IP   netip.Addr
	Name string
	Port uint16
}

// String is "IP:PORT", "[IPv6]:PORT" or "NAME:PORT".
func (a Addr) String() string {
	if a.Name != "" {
		return a.Name + ":" + strconv.Itoa(int(a.Port))
	}
	return netip.AddrPortFrom(a.IP, a.Port).String()
}

// AddrFrom is the SOCKS address of ap.
func AddrFrom(ap netip.AddrPort) Addr { return Addr{IP: ap.Addr().Unmap(), Port: ap.Port()} }

// Request is a client's request, RFC 1928 §4.
type Request struct {
	Command byte
	Dest    Addr
}

// Handshake reads the method negotiation (§3), answers it, and reads the
// request (§4). A client that does not offer "no authentication" gets
// X'FF' and ErrNoAuth; a request with an unknown address type gets reply
// X'08' and ErrAddress.
func Handshake(rw io.ReadWriter) (Request, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(rw, hdr[:]); err != nil {
		return Request{}, err
	}
	if hdr[0] != Version {
		return Request{}, ErrVersion
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(rw, methods); err != nil {
		return Request{}, err
	}
	method := byte(MethodNoAcceptable)
	for _, m := range methods {
		if m == MethodNoAuth {
			method = MethodNoAuth
		}
	}
	if _, err := rw.Write([]byte{Version, method}); err != nil {
		return Request{}, err
	}
	if method == MethodNoAcceptable {
		// §3: "the client MUST close the connection".
		return Request{}, ErrNoAuth
	}
	var req [3]byte // VER CMD RSV
	if _, err := io.ReadFull(rw, req[:]); err != nil {
		return Request{}, err
	}
	if req[0] != Version {
		return Request{}, ErrVersion
	}
	dst, err := readAddr(rw)
	if errors.Is(err, ErrAddress) {
		WriteReply(rw, RepAddressUnsupported, Addr{})
	}
	if err != nil {
		return Request{}, err
	}
	return Request{Command: req[1], Dest: dst}, nil
}

// readAddr reads ATYP, DST.ADDR and DST.PORT (§4, §5).
func readAddr(r io.Reader) (Addr, error) {
	var atyp [1]byte
	if _, err := io.ReadFull(r, atyp[:]); err != nil {
		return Addr{}, err
	}
	var a Addr
	switch atyp[0] {
	case atypIPv4:
		var b [4 + 2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Addr{}, err
		}
		a.IP, a.Port = netip.AddrFrom4([4]byte(b[:4])), binary.BigEndian.Uint16(b[4:])
	case atypIPv6:
		var b [16 + 2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Addr{}, err
		}
		a.IP, a.Port = netip.AddrFrom16([16]byte(b[:16])), binary.BigEndian.Uint16(b[16:])
	case atypDomain:
		// §5: "the first octet of the address field contains the number
		// of octets of name that follow, there is no terminating NUL".
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return Addr{}, err
		}
		b := make([]byte, int(n[0])+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return Addr{}, err
		}
		a.Name, a.Port = string(b[:n[0]]), binary.BigEndian.Uint16(b[n[0]:])
		if a.Name == "" {
			return Addr{}, fmt.Errorf("%w: empty domain name", ErrAddress)
		}
	default:
		return Addr{}, fmt.Errorf("%w %#x", ErrAddress, atyp[0])
	}
	return a, nil
}

// appendAddr appends ATYP, ADDR and PORT.
func appendAddr(b []byte, a Addr) []byte {
	switch {
	case a.Name != "":
		name := a.Name[:min(len(a.Name), 255)]
		b = append(append(b, atypDomain, byte(len(name))), name...)
	case a.IP.Is6():
		ip := a.IP.As16()
		b = append(append(b, atypIPv6), ip[:]...)
	default:
		var ip [4]byte // the zero Addr is 0.0.0.0
		if a.IP.IsValid() {
			ip = a.IP.As4()
		}
		b = append(append(b, atypIPv4), ip[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.Port)
}

// WriteReply writes a reply (§6): rep, and the bound address.
func WriteReply(w io.Writer, rep byte, bound Addr) error {
	_, err := w.Write(appendAddr([]byte{Version, rep, 0}, bound))
	return err
}

// ParseDatagram parses a UDP request header (§7): RSV, FRAG, DST.ADDR and
// DST.PORT, returning the destination, the fragment number and the data.
func ParseDatagram(b []byte) (dst Addr, frag byte, data []byte, err error) {
	if len(b) < 4 {
		return Addr{}, 0, nil, ErrShort
	}
	frag = b[2]
	r := &sliceReader{b: b[3:]}
	if dst, err = readAddr(r); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = ErrShort
		}
		return Addr{}, 0, nil, err
	}
	return dst, frag, r.b, nil
}

// AppendDatagram appends a UDP reply header with source src, then data.
func AppendDatagram(b []byte, src Addr, data []byte) []byte {
	return append(appendAddr(append(b, 0, 0, 0), src), data...)
}

// sliceReader reads from a byte slice, leaving the rest in b.
type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
