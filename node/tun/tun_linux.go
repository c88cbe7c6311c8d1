//go:build linux

package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/labnet-dev/labnet/node/tun/internal/netns"
)

const cloneDevice = "/dev/net/tun"

// Device is an open TUN device in layer-3 mode without packet information
// (IFF_TUN | IFF_NO_PI): every read returns one whole IPv4 or IPv6 packet and
// every write sends one. The device is not persistent: the kernel removes the
// interface when the Device is closed.
//
// ReadPacket, WritePacket and Close are safe for concurrent use.
type Device struct {
	name string
	f    *os.File // non-blocking, so the runtime poller wakes readers on Close

	closeOnce sync.Once
}

// Open creates the TUN interface name (at most 15 bytes; empty lets the
// kernel choose tunN) in the calling thread's network namespace, which is the
// process's unless the caller has moved its locked thread elsewhere. The
// interface starts down, without addresses: configuring it is the caller's.
//
// Without CAP_NET_ADMIN the error says so and errors.Is(err,
// os.ErrPermission) holds.
func Open(name string) (*Device, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("tun: creating TUN device %q: name longer than %d bytes", name, unix.IFNAMSIZ-1)
	}
	// O_NONBLOCK makes os.NewFile register the descriptor with the runtime
	// poller: reads park the goroutine, not the thread, and Close wakes
	// them (as wireguard-go does).
	fd, err := unix.Open(cloneDevice, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("tun: creating TUN device %q: %s does not exist (is the tun module loaded? modprobe tun): %w", name, cloneDevice, err)
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return nil, fmt.Errorf("tun: creating TUN device %q: opening %s needs access to it and CAP_NET_ADMIN (run as root or grant the capability): %w", name, cloneDevice, err)
	case err != nil:
		return nil, fmt.Errorf("tun: creating TUN device %q: open %s: %w", name, cloneDevice, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("tun: creating TUN device %q needs CAP_NET_ADMIN (run as root or grant the capability): %w", name, err)
		}
		return nil, fmt.Errorf("tun: creating TUN device %q: TUNSETIFF: %w", name, err)
	}
	// The kernel fills in the name it chose when name was empty or a
	// pattern such as "tun%d".
	return &Device{name: ifr.Name(), f: os.NewFile(uintptr(fd), cloneDevice)}, nil
}

// OpenInNamespace is Open inside the network namespace at netnsPath (for
// example /var/run/netns/NAME or /proc/PID/ns/net): the interface lives in
// that namespace while the process stays in its own. Only one locked OS
// thread enters the namespace, for the duration of the call.
func OpenInNamespace(netnsPath, name string) (*Device, error) {
	var d *Device
	err := netns.Do(netnsPath, func() error {
		var err error
		d, err = Open(name)
		return err
	})
	if err != nil {
		if d != nil {
			// The device was created but the thread could not
			// return to its own namespace: report that rather than
			// hand out a device from a half-failed call.
			d.Close()
		}
		return nil, err
	}
	return d, nil
}

// Name is the interface name the kernel gave the device.
func (d *Device) Name() string { return d.name }

// ReadPacket blocks until the kernel sends a packet out of the interface and
// copies it into buf, returning its length; a packet longer than buf is
// truncated to len(buf). A buffer of 65535 bytes holds any packet. It
// returns ErrClosed once the device is closed, including when Close is
// called during the read.
func (d *Device) ReadPacket(buf []byte) (int, error) {
	n, err := d.f.Read(buf)
	if err != nil {
		if errors.Is(err, os.ErrClosed) {
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("tun %s: read: %w", d.name, unwrapPath(err))
	}
	// Linux returns the bytes copied for a truncated packet; never trust
	// a driver to report more than buf holds.
	return min(n, len(buf)), nil
}

// WritePacket hands one whole IP packet to the kernel, as if the interface
// had received it. It does not keep pkt. Writing to a device whose
// interface is down fails (EIO).
func (d *Device) WritePacket(pkt []byte) error {
	if _, err := d.f.Write(pkt); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("tun %s: write: %w", d.name, unwrapPath(err))
	}
	return nil
}

// unwrapPath drops the *os.PathError around a read or write error: its
// "/dev/net/tun" says nothing the device name does not.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Close closes the device, which removes the interface from the kernel, and
// makes blocked and later ReadPacket and WritePacket calls return ErrClosed.
// It is idempotent: later calls return nil.
func (d *Device) Close() error {
	var err error
	d.closeOnce.Do(func() {
		if cerr := d.f.Close(); cerr != nil {
			err = fmt.Errorf("tun %s: close: %w", d.name, cerr)
		}
	})
	return err
}
