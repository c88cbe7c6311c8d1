//go:build linux

package tun

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Configure sets up the kernel's side of interface name (a TUN device) in
// the calling thread's network namespace: it sets the MTU, adds addrs
// (IPv6 ones without duplicate address detection: nothing else is on a TUN
// link), brings the interface up and routes every prefix of routes through
// it. Routes go away with the interface when the device is closed. Needs
// CAP_NET_ADMIN.
func Configure(name string, mtu int, addrs, routes []netip.Prefix) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tun %s: %w", name, err)
	}
	if err := netlink.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("tun %s: mtu %d: %w", name, mtu, err)
	}
	for _, a := range addrs {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("tun %s: address %s: %w", name, a, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("tun %s: up: %w", name, err)
	}
	for _, r := range routes {
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(r.Masked()), Scope: netlink.SCOPE_LINK}); err != nil {
			return fmt.Errorf("tun %s: route %s: %w", name, r, err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
