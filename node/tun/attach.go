package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/labnet-dev/labnet/stack"
)

// maxPacket is the largest IP packet (IPv4's 16-bit total length; IPv6
// jumbograms never cross a TUN device).
const maxPacket = 65535

// link is a stack.Link onto a TUN device. A TUN device is point to point:
// whatever is written goes to the kernel, so the next hop does not matter.
type link struct{ d *Device }

// Send writes pkt to the device. It does not keep pkt, so ownership is moot.
func (l link) Send(_ netip.Addr, pkt []byte) error { return l.d.WritePacket(pkt) }

// Attach adds an interface nicName to s whose wire is d: packets the stack
// sends through it are written to the device, and one goroutine reads
// packets from the device and hands them to the interface's receive queue
// (stack.NIC.Receive; a full queue drops and counts, as the kernel's own
// TUN queue does).
//
// On success the attachment owns d. stop closes d and waits for the reader
// goroutine; it returns the read error that ended the goroutine early, if
// one did (the interface was deleted, say), and is idempotent: later calls
// return nil once the first has finished. The NIC stays
// in the stack after stop (the stack cannot remove interfaces); packets
// sent through it then fail with ErrClosed. On error d is still the
// caller's.
func Attach(d *Device, s *stack.Stack, nicName string, mtu int, addrs ...netip.Prefix) (nic *stack.NIC, stop func() error, err error) {
	nic, err = s.AddInterface(nicName, mtu, link{d}, addrs...)
	if err != nil {
		return nil, nil, fmt.Errorf("tun %s: attach: %w", d.Name(), err)
	}
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(done)
		readErr = readLoop(d, nic.Receive)
	}()
	var once sync.Once
	stop = func() error {
		var err error
		once.Do(func() {
			closeErr := d.Close()
			<-done
			err = errors.Join(readErr, closeErr)
		})
		return err
	}
	return nic, stop, nil
}

// readLoop hands the device's packets to deliver, which takes ownership of
// each, until the device is closed (nil) or a read fails (the error).
func readLoop(d *Device, deliver func(pkt []byte)) error {
	buf := make([]byte, maxPacket)
	for {
		n, err := d.ReadPacket(buf)
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		// deliver takes ownership of the packet (the stack keeps it
		// queued), so it gets its own copy and buf is read into again.
		pkt := make([]byte, n)
		copy(pkt, buf[:n])
		deliver(pkt)
	}
}
