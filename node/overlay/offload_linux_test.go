//go:build linux

package overlay

import (
	"encoding/binary"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestControlMessages(t *testing.T) {
	b := putGSOControl(make([]byte, gsoControlLen), 1400)
	h, data, rest, err := unix.ParseOneSocketControlMessage(b)
	if err != nil || h.Level != unix.SOL_UDP || h.Type != unix.UDP_SEGMENT || len(data) != 2 || len(rest) != 0 {
		t.Fatalf("UDP_SEGMENT control message: %+v % x % x %v", h, data, rest, err)
	}
	// A UDP_GRO message carries an int (net/ipv4/udp.c, udp_cmsg_recv).
	oob := make([]byte, groControlLen)
	hdr := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	hdr.Level, hdr.Type = unix.SOL_UDP, unix.UDP_GRO
	hdr.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(oob[unix.CmsgLen(0):], 1400)
	if got := groSize(oob[:unix.CmsgSpace(4)]); got != 1400 {
		t.Errorf("groSize = %d, want 1400", got)
	}
	for _, junk := range [][]byte{nil, {1, 2, 3}, make([]byte, groControlLen)} {
		if got := groSize(junk); got != 0 {
			t.Errorf("groSize(% x) = %d, want 0", junk, got)
		}
	}
}

// TestSocketBuffer: as root, ReadBuffer goes past net.core.rmem_max.
func TestSocketBuffer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_RCVBUFFORCE needs CAP_NET_ADMIN")
	}
	c := listen(t, Options{ReadBuffer: 8 << 20, WriteBuffer: 8 << 20})
	rc, err := c.uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rcv, snd int
	rc.Control(func(fd uintptr) {
		rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	// The kernel reports twice what it was given (socket(7)).
	if rcv != 16<<20 || snd != 16<<20 {
		t.Errorf("SO_RCVBUF %d, SO_SNDBUF %d; want %d", rcv, snd, 16<<20)
	}
}
