package node

import (
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	sockaddr "github.com/hashicorp/go-sockaddr"
)

// advertised is what this node tells the others to dial: its API, overlay
// and gossip addresses.
type advertised struct {
	api, overlay string
	// gossip is empty when memberlist should advertise what it binds.
	gossip string
}

// advertise works out the addresses peers should use, given the bound API
// and overlay addresses: --advertise's IP with the bound ports, else the
// bound addresses, with an unspecified IP replaced by the machine's
// private IP.
func advertise(cfg Config, api string, overlay netip.AddrPort, log *slog.Logger) advertised {
	a := advertised{api: api, overlay: overlay.String()}
	if cfg.Advertise == "" {
		// An address bound to all interfaces is no address peers can use:
		// advertise the private IP memberlist would pick for itself.
		a.api = reachable(a.api, sockaddr.GetPrivateIP, log)
		a.overlay = reachable(a.overlay, sockaddr.GetPrivateIP, log)
		return a
	}
	_, p, _ := net.SplitHostPort(a.api)
	a.api = net.JoinHostPort(cfg.Advertise, p)
	a.overlay = net.JoinHostPort(cfg.Advertise, strconv.Itoa(int(overlay.Port())))
	_, gp, _ := net.SplitHostPort(cfg.Gossip) // port 0: memberlist advertises the port it binds
	a.gossip = net.JoinHostPort(cfg.Advertise, gp)
	return a
}

// reachable replaces the unspecified host of addr (0.0.0.0, ::) with the
// machine's private IP (from private), so that peers are told an address
// they can dial; addr is kept when it names a host or no private IP is
// found.
func reachable(addr string, private func() (string, error), log *slog.Logger) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsUnspecified() {
		return addr
	}
	ip, err := private()
	if err != nil || ip == "" {
		log.Warn("binding all addresses and no private IP found to tell peers: give --advertise", "address", addr)
		return addr
	}
	return net.JoinHostPort(ip, port)
}

// raftAdvertise is the raft address other control nodes dial: --advertise's
// IP with --raft's port, else --raft with an unspecified IP replaced by the
// machine's private IP; "" to advertise what raft binds. A port of 0 is
// the bound port (node/control fills it in).
func raftAdvertise(cfg Config, log *slog.Logger) string {
	host, port, err := net.SplitHostPort(cfg.Raft)
	if err != nil {
		return ""
	}
	if cfg.Advertise != "" {
		return net.JoinHostPort(cfg.Advertise, port)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return reachable(cfg.Raft, sockaddr.GetPrivateIP, log)
	}
	return ""
}
