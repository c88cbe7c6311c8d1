//go:build !linux

package tun

import "net/netip"

// Configure fails: TUN devices are Linux-only.
func Configure(name string, mtu int, addrs, routes []netip.Prefix) error { return unsupported(name) }
