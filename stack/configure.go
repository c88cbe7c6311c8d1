package stack

import "net/netip"

// InterfaceConfig is one interface for Configure.
type InterfaceConfig struct {
	Name  string
	MTU   int
	Link  Link // may be nil: set it later with the NIC's SetLink
	Addrs []netip.Prefix
}

// RouteConfig is one static route for Configure: to Dst through the next
// hop Via, as AddRoute takes them.
type RouteConfig struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Configure adds interfaces, then static routes (whose next hops may be
// on those interfaces), and builds the routing table once: a host of k
// interfaces and r routes costs one table, not k+r as with AddInterface
// and AddRoute one by one, which give the same table. All or nothing: on
// an error (the first, as AddInterface or AddRoute would return it) the
// stack is as before. It returns the new interfaces in ifaces' order.
func (s *Stack) Configure(ifaces []InterfaceConfig, routes []RouteConfig) ([]*NIC, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nNICs, nStatic := len(s.nics), len(s.static)
	undo := func(err error) ([]*NIC, error) {
		clear(s.nics[nNICs:])
		s.nics = s.nics[:nNICs]
		s.static = s.static[:nStatic]
		return nil, err
	}
	nics := make([]*NIC, 0, len(ifaces))
	for _, c := range ifaces {
		n, err := s.addInterfaceLocked(c.Name, c.MTU, c.Addrs)
		if err != nil {
			return undo(err)
		}
		nics = append(nics, n)
	}
	for _, r := range routes {
		if err := s.addRouteLocked(r.Dst, r.Via); err != nil {
			return undo(err)
		}
	}
	for i, c := range ifaces {
		nics[i].SetLink(c.Link)
	}
	s.rebuildRoutesLocked()
	return nics, nil
}
