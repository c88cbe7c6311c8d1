// Package runtime runs the virtual hosts placed on this node: it watches the
// desired state and starts, restarts or stops each host's stack, attaching
// its interfaces to the fabric.
package runtime

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/netip"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/services"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/tcp"
	"github.com/labnet-dev/labnet/stack/udp"
)

// Config configures a Runtime.
type Config struct {
	Node   string // run the hosts whose spec names this node
	Store  *store.Store
	Fabric *fabric.Fabric
	Clock  stack.Clock
	Logger *slog.Logger
	// Peers returns the overlay address of every other live node, by name;
	// nil for a labd without a cluster. PeersChanged signals a change.
	Peers        func() map[string]netip.AddrPort
	PeersChanged <-chan struct{}
	// Started, when set, is called with the stack of every host started
	// (or restarted after a change), before the host is visible to Host;
	// for different hosts, from several goroutines at once.
	Started func(name string, st *stack.Stack)
	// Fenced, when set, reports whether this node cannot confirm the
	// placement of its movable hosts (neither pinned nor no_failover): a
	// member that has not heard the control plane for nearly the failover
	// time, whose hosts the leader may have placed on other nodes. While
	// it is fenced those hosts do not run here, so that no host runs on
	// two nodes; pinned ones keep running. FenceChanged signals a change
	// of Fenced's answer.
	Fenced       func() bool
	FenceChanged <-chan struct{}
	// Removed, when set, reports whether an admin removed this node from
	// the cluster (labctl node remove): it then runs no host at all.
	// FenceChanged signals a change of its answer too.
	Removed func() bool
}

// Runtime owns the running hosts.
type Runtime struct {
	cfg Config

	mu    sync.RWMutex
	hosts map[string]*Host

	// reconcileMu serializes Reconcile, which alone uses what follows.
	reconcileMu sync.Mutex
	decoder     lab.Decoder
	specKeys    map[*labv1.Host]specKey    // hashes of the last read's specs
	netKeys     map[*labv1.Network]specKey // and of its networks
}

// New returns a runtime; call Run to start reconciling.
func New(cfg Config) *Runtime {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = stack.SystemClock{}
	}
	return &Runtime{cfg: cfg, hosts: map[string]*Host{}}
}

// Host is one running virtual host.
type Host struct {
	name   string
	key    specKey // hash of the spec (without impairments) and attached networks, to notice changes
	stack  *stack.Stack
	ifaces []hostIface // in the spec's order

	impairMu sync.Mutex // guards ifaces[i].impair

	tcp  *tcp.Protocol
	udp  *udp.Protocol
	svcs *services.Set
}

// hostIface is one interface of a host: its network's short id, its port,
// and the impairment applied to the port (guarded by Host.impairMu). A
// host keeps a slice of them, not maps: with 100,000 idle hosts on a labd,
// every map a host holds costs tens of megabytes.
type hostIface struct {
	name, network string
	port          *fabric.Port
	impair        *labv1.Impairment
}

// iface returns the interface named name, or nil.
func (h *Host) iface(name string) *hostIface {
	for i := range h.ifaces {
		if h.ifaces[i].name == name {
			return &h.ifaces[i]
		}
	}
	return nil
}

// TCP is the host's TCP.
func (h *Host) TCP() *tcp.Protocol { return h.tcp }

// UDP is the host's UDP.
func (h *Host) UDP() *udp.Protocol { return h.udp }

// hostNet gives the services the host's sockets, on every address.
type hostNet struct{ h *Host }

func (n hostNet) ListenTCP(port uint16) (net.Listener, error) {
	return n.h.tcp.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), port))
}

func (n hostNet) ListenUDP(port uint16) (net.PacketConn, error) {
	// The zero address: datagrams to every address of both families.
	return n.h.udp.ListenPacket(netip.AddrPortFrom(netip.Addr{}, port))
}

// Stack is the host's network stack.
func (h *Host) Stack() *stack.Stack { return h.stack }

// Networks maps each interface name to its network's short id.
func (h *Host) Networks() map[string]string {
	m := make(map[string]string, len(h.ifaces))
	for _, ifc := range h.ifaces {
		m[ifc.name] = ifc.network
	}
	return m
}

// ImpairCounters reports what the impairments of interface iface did (zero
// for an interface the host does not have).
func (h *Host) ImpairCounters(iface string) fabric.ImpairCounters {
	if ifc := h.iface(iface); ifc != nil {
		return ifc.port.ImpairCounters()
	}
	return fabric.ImpairCounters{}
}

// Impairment is the impairment applied to interface iface; nil when none.
func (h *Host) Impairment(iface string) *labv1.Impairment {
	h.impairMu.Lock()
	defer h.impairMu.Unlock()
	if ifc := h.iface(iface); ifc != nil {
		return ifc.impair
	}
	return nil
}

// setImpairments applies the spec's impairments to the interfaces' ports,
// changing only those that differ from what is applied: a port keeps what
// it holds and its counters.
func (h *Host) setImpairments(spec *labv1.Host) {
	h.impairMu.Lock()
	defer h.impairMu.Unlock()
	for _, ifc := range spec.Interfaces {
		hi := h.iface(ifc.Name)
		if hi == nil || proto.Equal(ifc.Impair, hi.impair) {
			continue
		}
		hi.port.SetImpair(impairment(ifc.Impair))
		hi.impair = ifc.Impair
	}
}

// impairment converts the API's Impairment to the fabric's; nil clears.
func impairment(im *labv1.Impairment) *fabric.Impairment {
	if im == nil {
		return nil
	}
	return &fabric.Impairment{
		Loss:      im.LossPercent,
		Delay:     im.Delay.AsDuration(),
		Jitter:    im.Jitter.AsDuration(),
		Duplicate: im.DuplicatePercent,
		Reorder:   im.ReorderPercent,
		Corrupt:   im.CorruptPercent,
		Rate:      im.RateBps,
	}
}

// Run reconciles until ctx is done, then stops every host.
func (r *Runtime) Run(ctx context.Context) error {
	changed, cancel := r.cfg.Store.Subscribe()
	defer cancel()
	defer r.stopAll()
	for {
		r.Reconcile()
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-r.cfg.PeersChanged:
		case <-r.cfg.FenceChanged:
		}
	}
}

// Host returns the running host with resource name name.
func (r *Runtime) Host(name string) (*Host, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.hosts[name]
	return h, ok
}

// All yields every running host by resource name (a snapshot: hosts may
// stop while it runs).
func (r *Runtime) All() iter.Seq2[string, *Host] {
	r.mu.RLock()
	hosts := make(map[string]*Host, len(r.hosts))
	for k, v := range r.hosts {
		hosts[k] = v
	}
	r.mu.RUnlock()
	return func(yield func(string, *Host) bool) {
		for k, v := range hosts {
			if !yield(k, v) {
				return
			}
		}
	}
}

// Count is the number of running hosts.
func (r *Runtime) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.hosts)
}

// desired is a host to run with the networks it attaches to.
type desired struct {
	spec *labv1.Host
	nets []*labv1.Network // by interface, as spec.Interfaces; nil when not stored (yet)
	key  specKey
}

// Reconcile makes the running hosts match the store once. Hosts start
// outside r.mu, in parallel on GOMAXPROCS workers: Host and All answer
// while 100,000 hosts start, and each host is visible once started.
func (r *Runtime) Reconcile() {
	r.reconcileMu.Lock()
	defer r.reconcileMu.Unlock()
	st := r.read()
	r.updateRemote(st)
	want := r.desired(st)
	var stop []*Host
	var start []*desired
	r.mu.Lock()
	for name, h := range r.hosts {
		if d, ok := want[name]; !ok || d.key != h.key {
			stop = append(stop, h)
			delete(r.hosts, name)
		}
	}
	for name, d := range want {
		if h, ok := r.hosts[name]; ok {
			// Impairments are not part of the key: they change in the
			// running ports, without a restart.
			h.setImpairments(d.spec)
			continue
		}
		if missing := d.missingNetwork(); missing != "" {
			// Replication is under way: the host's record came before its
			// network's. The next reconcile (on the network's arrival)
			// starts it.
			r.cfg.Logger.Debug("host waits for its network", "host", name, "network", missing)
			continue
		}
		start = append(start, d)
	}
	r.mu.Unlock()
	// Every stop is done before any start: a restarted host's new stack
	// takes the fabric addresses its old one held.
	for _, h := range stop {
		h.stop()
		r.cfg.Logger.Info("host stopped", "host", h.name)
	}
	r.startAll(start)
}

// startAll starts hosts on up to GOMAXPROCS goroutines, which end before
// it returns.
func (r *Runtime) startAll(hosts []*desired) {
	workers := min(goruntime.GOMAXPROCS(0), len(hosts))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(hosts) {
					return
				}
				r.startOne(hosts[i])
			}
		})
	}
	wg.Wait()
}

// startOne starts one host and makes it visible, or logs why it cannot.
func (r *Runtime) startOne(d *desired) {
	name := d.spec.Name
	h, err := r.start(d)
	if err != nil {
		r.cfg.Logger.Error("host failed to start", "host", name, "err", err)
		return
	}
	if r.cfg.Started != nil {
		r.cfg.Started(name, h.stack)
	}
	r.mu.Lock()
	r.hosts[name] = h
	r.mu.Unlock()
	r.cfg.Logger.Debug("host started", "host", name)
}

// missingNetwork names a network the host is on that the store does not
// have (yet); "" when it has them all.
func (d *desired) missingNetwork() string {
	for i, ifc := range d.spec.Interfaces {
		if d.nets[i] == nil {
			return ifc.Network
		}
	}
	return ""
}

// withoutImpairments is h with no interface impairments: the part of the
// spec whose change restarts the host.
func withoutImpairments(h *labv1.Host) *labv1.Host {
	if !slices.ContainsFunc(h.Interfaces, func(ifc *labv1.Interface) bool { return ifc.GetImpair() != nil }) {
		return h // most hosts: no copy needed
	}
	c := proto.CloneOf(h)
	for _, ifc := range c.Interfaces {
		ifc.Impair = nil
	}
	return c
}

// start builds the host's stack, its interfaces and routes at once, and
// attaches it to the fabric.
func (r *Runtime) start(d *desired) (*Host, error) {
	spec := d.spec
	st := stack.New(stack.Config{Name: spec.Name, Clock: r.cfg.Clock, Forwarding: spec.Forwarding})
	h := &Host{
		name: spec.Name, key: d.key, stack: st,
		ifaces: make([]hostIface, 0, len(spec.Interfaces)),
	}
	fail := func(err error) (*Host, error) {
		for _, ifc := range h.ifaces {
			ifc.port.Detach()
		}
		st.Close()
		return nil, err
	}
	ifaces := make([]stack.InterfaceConfig, len(spec.Interfaces))
	addrs := make([][]netip.Addr, len(spec.Interfaces))
	for i, ifc := range spec.Interfaces {
		n := d.nets[i]
		if n == nil {
			return fail(fmt.Errorf("interface %s: network %q missing", ifc.Name, ifc.Network))
		}
		for _, s := range []string{ifc.Ipv4, ifc.Ipv6} {
			if s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return fail(fmt.Errorf("interface %s: %w", ifc.Name, err))
			}
			ifaces[i].Addrs = append(ifaces[i].Addrs, p)
			addrs[i] = append(addrs[i], p.Addr())
		}
		mtu := int(n.Mtu)
		if mtu == 0 {
			mtu = defaultMTU
		}
		ifaces[i].Name, ifaces[i].MTU = ifc.Name, mtu
	}
	routes := make([]stack.RouteConfig, 0, len(spec.Routes))
	for _, rt := range spec.Routes {
		via, err := netip.ParseAddr(rt.Via)
		if err != nil {
			return fail(fmt.Errorf("route %s: %w", rt.To, err))
		}
		var dst netip.Prefix
		if rt.To == "default" {
			dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if via.Is6() {
				dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		} else if dst, err = netip.ParsePrefix(rt.To); err != nil {
			return fail(fmt.Errorf("route %s: %w", rt.To, err))
		}
		routes = append(routes, stack.RouteConfig{Dst: dst, Via: via})
	}
	// The interfaces come without links: each port delivers to its NIC's
	// receive queue (NIC.Receive) and is its link from then on.
	nics, err := st.Configure(ifaces, routes)
	if err != nil {
		return fail(err)
	}
	for i, ifc := range spec.Interfaces {
		port, err := r.cfg.Fabric.Attach(d.nets[i].Name, spec.Name+":"+ifc.Name, addrs[i], nics[i].Receive)
		if err != nil {
			return fail(err)
		}
		nics[i].SetLink(port)
		h.ifaces = append(h.ifaces, hostIface{name: ifc.Name, network: ifc.Network, port: port})
	}
	h.setImpairments(spec)
	h.tcp = tcp.New(st, tcp.Options{})
	h.udp = udp.New(st)
	if len(spec.Services) > 0 {
		labID, id, _ := lab.ParseHostName(spec.Name) // a host read through node/lab has a valid name
		info := services.HostInfo{Name: id, Lab: labID, Node: spec.Node}
		for _, n := range st.Interfaces() {
			info.Interfaces = append(info.Interfaces, services.InterfaceInfo{Name: n.Name(), Network: h.iface(n.Name()).network, Addresses: n.Addresses()})
		}
		set, err := services.Start(context.Background(), hostNet{h}, info, spec.Services, r.cfg.Logger.With("host", spec.Name))
		if err != nil {
			h.stop()
			return nil, err
		}
		h.svcs = set
	}
	return h, nil
}

func (h *Host) stop() {
	if h.svcs != nil {
		h.svcs.Close()
	}
	if h.tcp != nil {
		h.tcp.Close()
		h.udp.Close()
	}
	for _, ifc := range h.ifaces {
		ifc.port.Detach()
	}
	h.stack.Close() // waits for a receive worker still at work
}

func (r *Runtime) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, h := range r.hosts {
		h.stop()
		delete(r.hosts, name)
	}
}

// defaultMTU is a network's MTU when it names none: 1500 less room for the
// overlay (outer IPv4 20 + UDP 8 + GENEVE 8 + next-hop option up to 20 +
// sealing 28 = 84 bytes; DESIGN.md), so that a packet between hosts on
// different labd fits a 1500-byte real network unfragmented.
const defaultMTU = 1400
