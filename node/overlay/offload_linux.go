//go:build linux

package overlay

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoControlLen is the room a UDP_SEGMENT control message takes.
var gsoControlLen = unix.CmsgSpace(2)

// groControlLen is the room a UDP_GRO control message takes, with some to
// spare so that an unexpected extra message does not truncate it.
var groControlLen = 2 * unix.CmsgSpace(4)

// probeOffload reports whether the socket can send UDP GSO trains
// (UDP_SEGMENT, Linux 4.18) and turns UDP GRO on (UDP_GRO, Linux 5.0),
// reporting whether that worked. Each is skipped when asked not to.
func probeOffload(rc syscall.RawConn, tryGSO, tryGRO bool) (gso, gro bool) {
	rc.Control(func(fd uintptr) {
		if tryGSO {
			_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			gso = err == nil
		}
		if tryGRO {
			gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		}
	})
	return gso, gro
}

// setSocketBuffer sets SO_RCVBUF (or SO_SNDBUF) to bytes. When the kernel
// caps it at net.core.rmem_max (wmem_max), it tries SO_RCVBUFFORCE
// (SO_SNDBUFFORCE), which CAP_NET_ADMIN may use; without that capability the
// capped size stays.
func setSocketBuffer(uc *net.UDPConn, read bool, bytes int) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	opt, force := unix.SO_SNDBUF, unix.SO_SNDBUFFORCE
	if read {
		opt, force = unix.SO_RCVBUF, unix.SO_RCVBUFFORCE
	}
	cerr := rc.Control(func(fd uintptr) {
		if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, bytes); err != nil {
			return
		}
		// The kernel doubles what it is given (socket(7)) and reports that.
		if got, gerr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt); gerr == nil && got < 2*bytes {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, force, bytes) // best effort
		}
	})
	return errors.Join(cerr, err)
}

// putGSOControl writes a UDP_SEGMENT control message for segments of size
// bytes into b, which has gsoControlLen bytes, and returns it.
func putGSOControl(b []byte, size int) []byte {
	b = b[:gsoControlLen]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(size))
	return b
}

// groSize returns the segment size of a coalesced read from its control
// messages, or 0 when the read holds a single datagram.
func groSize(oob []byte) int {
	// ParseOneSocketControlMessage reads a header out of fewer bytes than
	// one (checkptr objects), so stop before a partial one.
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
			switch len(data) {
			case 2:
				return int(binary.NativeEndian.Uint16(data))
			case 4:
				return int(binary.NativeEndian.Uint32(data))
			}
			return 0
		}
		oob = rest
	}
	return 0
}

// gsoFailed sorts a failed send of a GSO train. EIO means the route's device
// cannot checksum segments (wireguard-go turns GSO off on it too): turn GSO
// off for good. EINVAL may mean a segment is larger than the path MTU allows
// for GSO, where a plain send would fragment: send that train's segments one
// by one. Either way the segments are sent again without GSO.
func gsoFailed(err error) (retry, disable bool) {
	switch {
	case errors.Is(err, unix.EIO):
		return true, true
	case errors.Is(err, unix.EINVAL):
		return true, false
	}
	return false, false
}

const msgTrunc = unix.MSG_TRUNC
