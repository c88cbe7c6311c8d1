package stack

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// Route is one entry of the routing table.
type Route struct {
	// Dst is the destination prefix (masked).
	Dst netip.Prefix
	// Via is the next hop; invalid for a connected route, where the next hop
	// is the destination itself.
	Via netip.Addr
	// NIC is the outgoing interface.
	NIC *NIC
}

// Connected reports whether the route is an interface's own subnet.
func (r *Route) Connected() bool { return !r.Via.IsValid() }

// nextHop is where a packet for dst goes on r's interface.
func (r *Route) nextHop(dst netip.Addr) netip.Addr {
	if r.Via.IsValid() {
		return r.Via
	}
	return dst
}

// routeTable is an immutable snapshot: the packet path reads it without locks
// and writers replace it whole (routes change rarely, packets never stop).
// Each snapshot has the next generation number, so a Path resolved in one
// knows when it has been replaced.
type routeTable struct {
	gen  uint64
	nics []*NIC
	// addrs and owners are the local addresses and the interface owning
	// each (the last to claim it); local is the same as a map, built only
	// when there are more than maxScan: comparing a handful of netip.Addr
	// values is faster than hashing one, and every received packet asks.
	local  map[netip.Addr]*NIC
	addrs  []netip.Addr
	owners []*NIC
	v4     lpm
	v6     lpm
	all    []Route
}

// maxScan is the most local addresses owner compares one by one.
const maxScan = 8

// owner returns the interface that owns the local address a, or nil.
func (t *routeTable) owner(a netip.Addr) *NIC {
	if t.local != nil {
		return t.local[a]
	}
	for i, l := range t.addrs {
		if l == a {
			return t.owners[i]
		}
	}
	return nil
}

// lpm is a longest-prefix-match table. A table of a few routes (every
// host but a big router) is a slice scanned whole: that costs less than
// hashing a netip.Prefix, and 100,000 idle hosts do not each hold maps.
// A bigger one is one map per prefix length, probed from the longest
// length present down, so a lookup costs one map probe per distinct length
// in use (a handful), whatever the number of routes.
type lpm struct {
	few  []*Route // every route, in insertion order
	lens []int    // descending; with m only
	m    map[netip.Prefix]*Route
}

// has reports whether the table holds a route to exactly dst.
func (t *lpm) has(dst netip.Prefix) bool {
	if t.m != nil {
		return t.m[dst] != nil
	}
	for _, r := range t.few {
		if r.Dst == dst {
			return true
		}
	}
	return false
}

// insert adds r; the caller checks has first (the first of equal prefixes
// wins).
func (t *lpm) insert(r *Route) {
	t.few = append(t.few, r)
	if t.m == nil && len(t.few) <= maxScan {
		return
	}
	if t.m == nil {
		t.m = map[netip.Prefix]*Route{}
		for _, e := range t.few[:len(t.few)-1] {
			t.index(e)
		}
	}
	t.index(r)
}

func (t *lpm) index(r *Route) {
	t.m[r.Dst] = r
	if !slices.Contains(t.lens, r.Dst.Bits()) {
		t.lens = append(t.lens, r.Dst.Bits())
		slices.SortFunc(t.lens, func(a, b int) int { return cmp.Compare(b, a) })
	}
}

func (t *lpm) lookup(a netip.Addr) *Route {
	if t.m == nil {
		var best *Route
		for _, r := range t.few {
			if (best == nil || r.Dst.Bits() > best.Dst.Bits()) && r.Dst.Contains(a) {
				best = r
			}
		}
		return best
	}
	for _, l := range t.lens {
		p, _ := a.Prefix(l)
		if r := t.m[p]; r != nil {
			return r
		}
	}
	return nil
}

// lookup returns the route for dst, or nil.
func (t *routeTable) lookup(dst netip.Addr) *Route {
	if dst.Is4() {
		return t.v4.lookup(dst)
	}
	return t.v6.lookup(dst)
}

// localMTU is the MTU toward this host's own addresses: the IPv4 total
// length limit, as Linux's lo (which has 65536).
const localMTU = 65535

// route is the route a locally sent packet to dst takes: nil with a nil
// error when dst is this host's own (the packet loops back), else the
// longest match, or ErrNoRoute.
func (t *routeTable) route(dst netip.Addr) (*Route, error) {
	if t.owner(dst) != nil {
		return nil, nil
	}
	if r := t.lookup(dst); r != nil {
		return r, nil
	}
	return nil, ErrNoRoute
}

// AddRoute installs a static route to dst through the next hop via, which
// must lie on a connected subnet (no recursive routes: RFC 1812 §5.2.4.3's
// longest match is done once). dst is masked to its prefix length.
func (s *Stack) AddRoute(dst netip.Prefix, via netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.addRouteLocked(dst, via); err != nil {
		return err
	}
	s.rebuildRoutesLocked()
	return nil
}

// addRouteLocked checks and adds a static route against the interfaces
// and static routes the stack has now (s.nics, s.static), which may be
// ahead of the published table, without rebuilding the table.
func (s *Stack) addRouteLocked(dst netip.Prefix, via netip.Addr) error {
	if !dst.IsValid() || !via.IsValid() {
		return fmt.Errorf("stack %s: route %v via %v: invalid", s.name, dst, via)
	}
	if dst.Addr().Is4() != via.Is4() {
		return fmt.Errorf("stack %s: route %v via %v: address families differ", s.name, dst, via)
	}
	dst = dst.Masked()
	nic := connectedNIC(s.nics, via)
	if nic == nil {
		return fmt.Errorf("stack %s: route %v via %v: next hop is not on a connected network", s.name, dst, via)
	}
	for _, n := range s.nics {
		for _, a := range n.addrs {
			if a.Addr() == via {
				return fmt.Errorf("stack %s: route %v via %v: next hop is this host's own address", s.name, dst, via)
			}
		}
	}
	for _, n := range s.nics {
		for _, a := range n.addrs {
			if a.Masked() == dst {
				return fmt.Errorf("stack %s: route %v exists", s.name, dst)
			}
		}
	}
	for _, e := range s.static {
		if e.Dst == dst {
			return fmt.Errorf("stack %s: route %v exists", s.name, dst)
		}
	}
	s.static = append(s.static, Route{Dst: dst, Via: via, NIC: nic})
	return nil
}

// connectedNIC is the interface of the longest connected subnet that
// contains a (the first of equal ones), or nil. A next hop must be a
// neighbour on a connected network whatever static routes also cover it
// (Linux's fib_check_nh looks at link-scope routes only).
func connectedNIC(nics []*NIC, a netip.Addr) *NIC {
	var best *NIC
	bits := -1
	for _, n := range nics {
		for _, p := range n.addrs {
			if p.Bits() > bits && p.Masked().Contains(a) {
				best, bits = n, p.Bits()
			}
		}
	}
	return best
}

// RemoveRoute removes the static route to dst (masked to its prefix
// length). Connected routes go only with their interface.
func (s *Stack) RemoveRoute(dst netip.Prefix) error {
	if !dst.IsValid() {
		return fmt.Errorf("stack %s: remove route %v: invalid", s.name, dst)
	}
	dst = dst.Masked()
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.static, func(r Route) bool { return r.Dst == dst })
	if i < 0 {
		return fmt.Errorf("stack %s: remove route %v: no such static route", s.name, dst)
	}
	s.static = slices.Delete(s.static, i, i+1)
	s.rebuildRoutesLocked()
	return nil
}

// Routes returns the routing table: connected routes first, then static
// routes, each group in the order added.
func (s *Stack) Routes() []Route { return append([]Route(nil), s.routes.Load().all...) }

// RouteGeneration is the routing table's generation: it grows by one with
// every change (an interface or a route added or removed). Paths resolved
// in an older generation resolve their route again.
func (s *Stack) RouteGeneration() uint64 { return s.routes.Load().gen }

func (s *Stack) rebuildRoutesLocked() {
	t := &routeTable{gen: s.routes.Load().gen + 1, nics: append([]*NIC(nil), s.nics...)}
	for _, n := range s.nics {
		for _, a := range n.addrs {
			if i := slices.Index(t.addrs, a.Addr()); i >= 0 {
				t.owners[i] = n // the last owner wins, as in local
			} else {
				t.addrs = append(t.addrs, a.Addr())
				t.owners = append(t.owners, n)
			}
			t.all = append(t.all, Route{Dst: a.Masked(), NIC: n})
		}
	}
	if len(t.addrs) > maxScan {
		t.local = make(map[netip.Addr]*NIC, len(t.addrs))
		for i, a := range t.addrs {
			t.local[a] = t.owners[i]
		}
	}
	t.all = append(t.all, s.static...)
	for i := range t.all {
		r := &t.all[i]
		if r.Dst.Addr().Is4() {
			if !t.v4.has(r.Dst) { // the first of equal prefixes wins
				t.v4.insert(r)
			}
		} else if !t.v6.has(r.Dst) {
			t.v6.insert(r)
		}
	}
	s.routes.Store(t)
}
