package lab

import "slices"

// Placer puts hosts that name no node on the least-loaded node, the first
// by name among equals (DESIGN.md: placement), counting each host it
// places. Apply places new hosts with it and failover moves the hosts of
// gone nodes with it.
type Placer struct {
	lazy  func() *Placer // LazyPlacer's, until the first Place
	nodes []string
	load  map[string]int
}

// NewPlacer places on nodes, given the hosts each already holds (nodes
// missing from load hold none).
func NewPlacer(nodes []string, load map[string]int) *Placer {
	p := &Placer{nodes: slices.Sorted(slices.Values(nodes)), load: map[string]int{}}
	for _, n := range p.nodes {
		p.load[n] = load[n]
	}
	return p
}

// Place picks a node for one more host and counts it there; "" when the
// placer has no nodes.
func (p *Placer) Place() string {
	if p.lazy != nil {
		*p = *p.lazy()
	}
	if len(p.nodes) == 0 {
		return ""
	}
	best := p.nodes[0]
	for _, n := range p.nodes[1:] {
		if p.load[n] < p.load[best] {
			best = n
		}
	}
	p.load[best]++
	return best
}

// LazyPlacer is a placer made by newPlacer on its first Place: an apply
// whose hosts all keep their nodes does not count every node's hosts.
func LazyPlacer(newPlacer func() *Placer) *Placer {
	return &Placer{lazy: newPlacer}
}
