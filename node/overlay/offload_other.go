//go:build !linux

package overlay

import (
	"net"
	"syscall"
)

// Without Linux there is no GSO or GRO: Conn always takes the fallback path,
// which x/net turns into one datagram per system call.

var (
	gsoControlLen = 0
	groControlLen = 0
)

const msgTrunc = 0

func probeOffload(syscall.RawConn, bool, bool) (gso, gro bool) { return false, false }
func putGSOControl(b []byte, _ int) []byte                     { return b[:0] }
func groSize([]byte) int                                       { return 0 }
func gsoFailed(error) (retry, disable bool)                    { return false, false }

func setSocketBuffer(uc *net.UDPConn, read bool, bytes int) error {
	if read {
		return uc.SetReadBuffer(bytes)
	}
	return uc.SetWriteBuffer(bytes)
}
