package node

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/tun"
	"github.com/labnet-dev/labnet/stack"
)

// The TUN gateway (labd --tun NAME --tun-router LAB/HOST): a kernel TUN
// device that is an interface of a virtual router, so that the machine's
// kernel routes to lab networks and lab hosts reach the kernel. The link
// between the two is --tun-net (10.254.0.0/30 by default): the kernel's
// side of the device has its first address, the router's interface (named
// as the device) the second. labd configures the kernel's side itself, in
// the network namespace it runs in: the device's addresses, MTU 1400 (the
// lab's default) and a route through the device for every prefix of
// --tun-routes. Closing the device at exit removes it and its routes.

// DefaultTunNet is the link between the kernel and the router.
const DefaultTunNet = "10.254.0.0/30"

// tunMTU is the device's MTU on both sides: the lab's default.
const tunMTU = 1400

// TunConfig configures the TUN gateway; Device empty is none.
type TunConfig struct {
	Device string         // the device's name
	Router string         // "LAB/HOST": the router it is an interface of
	Net    []netip.Prefix // the link, at most one per family
	Routes []netip.Prefix // lab prefixes the kernel routes into the device
}

// tunFlags registers the gateway's flags on fs; the returned function
// parses their values into c once fs has parsed.
func tunFlags(fs *flag.FlagSet, c *TunConfig) func() error {
	var nets, routes string
	fs.StringVar(&c.Device, "tun", "", "TUN gateway: create this kernel TUN device as an interface of --tun-router (needs CAP_NET_ADMIN)")
	fs.StringVar(&c.Router, "tun-router", "", "TUN gateway: the virtual router (LAB/HOST, running on this node) the device is an interface of")
	fs.StringVar(&nets, "tun-net", DefaultTunNet, "TUN gateway: the link's prefixes (IPv4 and/or IPv6, comma-separated): the kernel gets the first address, the router the second")
	fs.StringVar(&routes, "tun-routes", "", "TUN gateway: comma-separated lab prefixes the kernel routes through the device")
	return func() error {
		var err error
		if c.Net, err = prefixes("--tun-net", nets); err != nil {
			return err
		}
		c.Routes, err = prefixes("--tun-routes", routes)
		return err
	}
}

func prefixes(flag, list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a prefix (ADDRESS/BITS)", flag, s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Validate checks the gateway's configuration.
func (c *TunConfig) Validate() error {
	if c.Device == "" {
		if c.Router != "" || len(c.Routes) > 0 {
			return errors.New("--tun-router and --tun-routes need --tun NAME")
		}
		return nil
	}
	if len(c.Device) > 15 || strings.ContainsAny(c.Device, "/ \t\n%") {
		return fmt.Errorf("--tun: %q is not an interface name (at most 15 characters, no '/', '%%' or spaces)", c.Device)
	}
	if lab, host, ok := strings.Cut(c.Router, "/"); !ok || lab == "" || host == "" || strings.Contains(host, "/") {
		return fmt.Errorf("--tun-router: %q is not LAB/HOST (the virtual router the device is an interface of)", c.Router)
	}
	if len(c.Net) == 0 {
		return errors.New("--tun-net: give at least one prefix")
	}
	seen := map[bool]bool{}
	for _, p := range c.Net {
		if seen[p.Addr().Is4()] {
			return fmt.Errorf("--tun-net: %s: at most one prefix per address family", p)
		}
		seen[p.Addr().Is4()] = true
		if p.Addr().BitLen()-p.Bits() < 2 {
			return fmt.Errorf("--tun-net: %s has no room for two addresses (at most /30 or /126)", p)
		}
	}
	return nil
}

// addrs are the kernel's and the router's addresses on the link.
func (c *TunConfig) addrs() (kernel, router []netip.Prefix) {
	for _, p := range c.Net {
		first := p.Addr().Next()
		kernel = append(kernel, netip.PrefixFrom(first, p.Bits()))
		router = append(router, netip.PrefixFrom(first.Next(), p.Bits()))
	}
	return kernel, router
}

// gateway is a running TUN gateway.
type gateway struct {
	gw     *tun.Gateway
	router string // resource name
	addrs  []netip.Prefix
	log    *slog.Logger
}

// openGateway creates and configures the device.
func openGateway(c TunConfig, log *slog.Logger) (*gateway, error) {
	d, err := tun.Open(c.Device)
	if err != nil {
		return nil, fmt.Errorf("--tun %s: %w", c.Device, err)
	}
	kernel, router := c.addrs()
	if err := tun.Configure(d.Name(), tunMTU, kernel, c.Routes); err != nil {
		d.Close()
		return nil, fmt.Errorf("--tun %s: %w", c.Device, err)
	}
	labID, host, _ := strings.Cut(c.Router, "/")
	g := &gateway{gw: tun.NewGateway(d), router: lab.HostName(labID, host), addrs: router, log: log}
	log.Info("tun gateway", "device", d.Name(), "kernel", kernel, "router", c.Router, "router addresses", router, "kernel routes", c.Routes)
	return g, nil
}

// hook is the runtime's Started hook: nil without a gateway.
func (g *gateway) hook() func(string, *stack.Stack) {
	if g == nil {
		return nil
	}
	return g.started
}

// started attaches the device to the router whenever it starts.
func (g *gateway) started(name string, st *stack.Stack) {
	if name != g.router {
		return
	}
	if _, err := g.gw.Attach(st, g.gw.Name(), tunMTU, g.addrs...); err != nil {
		g.log.Error("tun gateway: cannot attach to the router", "router", name, "err", err)
		return
	}
	g.log.Info("tun gateway attached", "router", name, "interface", g.gw.Name())
}

func (g *gateway) close() {
	if err := g.gw.Close(); err != nil {
		g.log.Warn("tun gateway: closing", "err", err)
	}
}
