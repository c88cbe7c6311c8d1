//go:build !linux

package tun

import (
	"errors"
	"fmt"
	"runtime"
)

// Device is an open TUN device. TUN devices are Linux-only: elsewhere no
// Device can be opened and its methods fail.
type Device struct{}

func unsupported(name string) error {
	return fmt.Errorf("tun: creating TUN device %q: TUN devices are supported on Linux only, not %s: %w", name, runtime.GOOS, errors.ErrUnsupported)
}

// Open fails: TUN devices are Linux-only.
func Open(name string) (*Device, error) { return nil, unsupported(name) }

// OpenInNamespace fails: TUN devices and network namespaces are Linux-only.
func OpenInNamespace(netnsPath, name string) (*Device, error) { return nil, unsupported(name) }

// Name returns "".
func (d *Device) Name() string { return "" }

// ReadPacket returns ErrClosed.
func (d *Device) ReadPacket(buf []byte) (int, error) { return 0, ErrClosed }

// WritePacket returns ErrClosed.
func (d *Device) WritePacket(pkt []byte) error { return ErrClosed }

// Close does nothing.
func (d *Device) Close() error { return nil }
