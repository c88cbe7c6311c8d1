package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// pcapng, as specified by the IETF OPSAWG draft "PCAP Now Generic
// (pcapng) Capture File Format" (draft-ietf-opsawg-pcapng): a Section
// Header Block, one Interface Description Block per interface, then one
// Enhanced Packet Block per packet. We write little-endian sections and
// read either byte order.
const (
	blockSHB = 0x0A0D0D0A // §4.1
	blockIDB = 0x00000001 // §4.2
	blockSPB = 0x00000003 // §4.4
	blockEPB = 0x00000006 // §4.3

	byteOrderMagic = 0x1A2B3C4D

	optEnd       = 0
	optComment   = 1 // opt_comment (§3.5)
	optShbUserap = 4 // shb_userappl
	optIfName    = 2 // if_name
	optIfDesc    = 3 // if_description
	optIfIPv4    = 4 // if_IPv4addr
	optIfIPv6    = 5 // if_IPv6addr
	optIfTsresol = 9 // if_tsresol
	optEpbFlags  = 2 // epb_flags

	// linkTypeRaw is LINKTYPE_RAW: the packet begins with an IPv4 or IPv6
	// header (tcpdump.org link-layer header types).
	linkTypeRaw = 101

	// maxBlock bounds a block the reader accepts, so a corrupt length
	// cannot make it allocate without limit.
	maxBlock = 16 << 20
)

// Writer writes packets as pcapng.
type Writer struct {
	w      *bufio.Writer
	ifaces map[string]uint32
	snap   uint32
	err    error
}

// NewWriter writes the section header to w. snaplen is recorded in each
// interface's description (0 for no limit).
func NewWriter(w io.Writer, snaplen int) (*Writer, error) {
	pw := &Writer{w: bufio.NewWriterSize(w, 64<<10), ifaces: map[string]uint32{}, snap: uint32(max(snaplen, 0))}
	var body []byte
	body = binary.LittleEndian.AppendUint32(body, byteOrderMagic)
	body = binary.LittleEndian.AppendUint16(body, 1) // major
	body = binary.LittleEndian.AppendUint16(body, 0) // minor
	body = binary.LittleEndian.AppendUint64(body, ^uint64(0))
	body = appendOpt(body, optShbUserap, []byte("labnet"))
	body = appendOpt(body, optEnd, nil)
	pw.block(blockSHB, body)
	return pw, pw.err
}

// AddInterface describes an interface ("host:iface") and its addresses;
// packets on it may follow. Adding a known interface does nothing. desc is
// free text (the node that runs it, say).
func (pw *Writer) AddInterface(name, desc string, addrs ...netip.Addr) error {
	if _, ok := pw.ifaces[name]; ok {
		return pw.err
	}
	pw.ifaces[name] = uint32(len(pw.ifaces))
	var body []byte
	body = binary.LittleEndian.AppendUint16(body, linkTypeRaw)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint32(body, pw.snap)
	body = appendOpt(body, optIfName, []byte(name))
	if desc != "" {
		body = appendOpt(body, optIfDesc, []byte(desc))
	}
	for _, a := range addrs {
		// §4.2 if_IPv4addr: address and netmask; if_IPv6addr: address and
		// prefix length. Host addresses: the prefix is not ours to tell.
		if a.Is4() {
			b := a.As4()
			body = appendOpt(body, optIfIPv4, append(b[:], 255, 255, 255, 255))
		} else {
			b := a.As16()
			body = appendOpt(body, optIfIPv6, append(b[:], 128))
		}
	}
	body = appendOpt(body, optIfTsresol, []byte{9}) // nanoseconds
	body = appendOpt(body, optEnd, nil)
	pw.block(blockIDB, body)
	return pw.err
}

// WritePacket writes one packet, describing its interface first if needed.
func (pw *Writer) WritePacket(p *Packet) error {
	if err := pw.AddInterface(p.Iface, ""); err != nil {
		return err
	}
	ts := uint64(p.Time.UnixNano())
	orig := max(p.OrigLen, len(p.Data))
	var body []byte
	body = binary.LittleEndian.AppendUint32(body, pw.ifaces[p.Iface])
	body = binary.LittleEndian.AppendUint32(body, uint32(ts>>32))
	body = binary.LittleEndian.AppendUint32(body, uint32(ts))
	body = binary.LittleEndian.AppendUint32(body, uint32(len(p.Data)))
	body = binary.LittleEndian.AppendUint32(body, uint32(orig))
	body = append(body, p.Data...)
	body = append(body, make([]byte, pad4(len(p.Data)))...)
	if p.Dir != DirUnknown {
		body = appendOpt(body, optEpbFlags, binary.LittleEndian.AppendUint32(nil, uint32(p.Dir)))
	}
	if c := p.Comment(); c != "" {
		body = appendOpt(body, optComment, []byte(c))
	}
	body = appendOpt(body, optEnd, nil)
	pw.block(blockEPB, body)
	return pw.err
}

// Flush writes out what is buffered.
func (pw *Writer) Flush() error {
	if pw.err == nil {
		pw.err = pw.w.Flush()
	}
	return pw.err
}

func (pw *Writer) block(typ uint32, body []byte) {
	if pw.err != nil {
		return
	}
	n := uint32(12 + len(body))
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[0:], typ)
	binary.LittleEndian.PutUint32(hdr[4:], n)
	_, _ = pw.w.Write(hdr[:])
	_, _ = pw.w.Write(body)
	_, pw.err = pw.w.Write(hdr[4:8])
}

func pad4(n int) int { return (4 - n%4) % 4 }

func appendOpt(b []byte, code uint16, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	return append(b, make([]byte, pad4(len(v)))...)
}

// ErrNotPcapng is returned for input that does not start with a pcapng
// section header.
var ErrNotPcapng = errors.New("not a pcapng file")

// Reader reads packets from a pcapng stream: our own files, and any other
// pcapng whose interfaces carry raw IP (LINKTYPE_RAW, or IPv4/IPv6 link
// types 228/229); packets of other link types are skipped and counted.
type Reader struct {
	// OnInterface, when set, is called for each interface described, with
	// its addresses.
	OnInterface func(name string, addrs []netip.Addr)

	r       *bufio.Reader
	order   binary.ByteOrder
	ifaces  []ifaceInfo
	Skipped int // packets on interfaces whose link type we do not read
	started bool
}

type ifaceInfo struct {
	name    string
	link    uint16
	tsUnits uint64 // per second
}

// NewReader reads from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 64<<10)} }

// Next returns the next packet, or io.EOF at the end.
func (pr *Reader) Next() (*Packet, error) {
	for {
		typ, body, err := pr.readBlock()
		if err != nil {
			return nil, err
		}
		switch typ {
		case blockIDB:
			if err := pr.idb(body); err != nil {
				return nil, err
			}
		case blockEPB:
			p, err := pr.epb(body)
			if err != nil {
				return nil, err
			}
			if p != nil {
				return p, nil
			}
		}
	}
}

func (pr *Reader) readBlock() (uint32, []byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(pr.r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF || !pr.started && err == io.EOF {
			if !pr.started {
				return 0, nil, ErrNotPcapng
			}
			return 0, nil, fmt.Errorf("pcapng: truncated block header")
		}
		return 0, nil, err
	}
	if binary.LittleEndian.Uint32(hdr[0:]) == blockSHB {
		// §4.1: the byte order magic follows the length and tells the
		// section's endianness.
		var magic [4]byte
		if _, err := io.ReadFull(pr.r, magic[:]); err != nil {
			return 0, nil, fmt.Errorf("pcapng: truncated section header")
		}
		switch {
		case binary.LittleEndian.Uint32(magic[:]) == byteOrderMagic:
			pr.order = binary.LittleEndian
		case binary.BigEndian.Uint32(magic[:]) == byteOrderMagic:
			pr.order = binary.BigEndian
		default:
			return 0, nil, ErrNotPcapng
		}
		pr.started = true
		pr.ifaces = nil // interface numbering restarts with each section
		n := pr.order.Uint32(hdr[4:])
		if n < 28 || n > maxBlock || n%4 != 0 {
			return 0, nil, fmt.Errorf("pcapng: bad section header length %d", n)
		}
		rest := make([]byte, n-12)
		if _, err := io.ReadFull(pr.r, rest); err != nil {
			return 0, nil, fmt.Errorf("pcapng: truncated section header")
		}
		return blockSHB, nil, nil
	}
	if !pr.started {
		return 0, nil, ErrNotPcapng
	}
	typ, n := pr.order.Uint32(hdr[0:]), pr.order.Uint32(hdr[4:])
	if n < 12 || n > maxBlock || n%4 != 0 {
		return 0, nil, fmt.Errorf("pcapng: bad block length %d", n)
	}
	buf := make([]byte, n-8)
	if _, err := io.ReadFull(pr.r, buf); err != nil {
		return 0, nil, fmt.Errorf("pcapng: truncated block")
	}
	if pr.order.Uint32(buf[len(buf)-4:]) != n {
		return 0, nil, fmt.Errorf("pcapng: block lengths disagree")
	}
	return typ, buf[:len(buf)-4], nil
}

func (pr *Reader) idb(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("pcapng: short interface description")
	}
	info := ifaceInfo{name: fmt.Sprintf("if%d", len(pr.ifaces)), link: pr.order.Uint16(b), tsUnits: 1e6}
	var addrs []netip.Addr
	for code, v := range pr.options(b[8:]) {
		switch code {
		case optIfName:
			info.name = string(v)
		case optIfIPv4:
			if len(v) >= 4 {
				addrs = append(addrs, netip.AddrFrom4([4]byte(v[:4])))
			}
		case optIfIPv6:
			if len(v) >= 16 {
				addrs = append(addrs, netip.AddrFrom16([16]byte(v[:16])))
			}
		case optIfTsresol:
			if len(v) >= 1 {
				// §4.2: high bit clear, a power of 10; set, a power of 2.
				if e := v[0] & 0x7f; v[0]&0x80 == 0 && e <= 18 {
					info.tsUnits = pow(10, e)
				} else if v[0]&0x80 != 0 && e < 64 {
					info.tsUnits = 1 << e
				}
			}
		}
	}
	pr.ifaces = append(pr.ifaces, info)
	if pr.OnInterface != nil {
		pr.OnInterface(info.name, addrs)
	}
	return nil
}

func pow(b, e uint8) uint64 {
	r := uint64(1)
	for range e {
		r *= uint64(b)
	}
	return r
}

func (pr *Reader) epb(b []byte) (*Packet, error) {
	if len(b) < 20 {
		return nil, fmt.Errorf("pcapng: short packet block")
	}
	id := pr.order.Uint32(b)
	if int(id) >= len(pr.ifaces) {
		return nil, fmt.Errorf("pcapng: packet on undescribed interface %d", id)
	}
	info := pr.ifaces[id]
	ts := uint64(pr.order.Uint32(b[4:]))<<32 | uint64(pr.order.Uint32(b[8:]))
	capLen, origLen := pr.order.Uint32(b[12:]), pr.order.Uint32(b[16:])
	if uint64(capLen) > uint64(len(b)-20) {
		return nil, fmt.Errorf("pcapng: packet longer than its block")
	}
	data := b[20 : 20+capLen]
	optStart := 20 + int(capLen) + pad4(int(capLen))
	if info.link != linkTypeRaw && info.link != 228 && info.link != 229 {
		pr.Skipped++
		return nil, nil
	}
	sec, frac := ts/info.tsUnits, ts%info.tsUnits
	var ns uint64
	if info.tsUnits >= 1e9 {
		ns = frac / (info.tsUnits / 1e9)
	} else {
		ns = frac * 1e9 / info.tsUnits // frac < 1e9: no overflow
	}
	p := &Packet{
		Time:    time.Unix(int64(sec), int64(ns)),
		Iface:   info.name,
		Data:    data,
		OrigLen: int(origLen),
	}
	if optStart <= len(b) {
		for code, v := range pr.options(b[optStart:]) {
			switch code {
			case optEpbFlags:
				if len(v) >= 4 {
					p.Dir = Dir(pr.order.Uint32(v) & 3)
				}
			case optComment:
				p.ParseComment(string(v))
			}
		}
	}
	return p, nil
}

// options iterates a block's options until opt_endofopt or the end.
func (pr *Reader) options(b []byte) func(func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= 4 {
			code, n := pr.order.Uint16(b), int(pr.order.Uint16(b[2:]))
			if code == optEnd || 4+n > len(b) {
				return
			}
			if !yield(code, b[4:4+n]) {
				return
			}
			b = b[min(len(b), 4+n+pad4(n)):]
		}
	}
}
