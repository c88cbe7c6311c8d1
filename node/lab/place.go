package lab

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

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

// MoveHost moves host name from node from to node to, reading the host in
// tx and rewriting only its node field, so that whatever else changed in
// the record since the caller decided (an impairment set meanwhile) is
// kept. It reports false, writing nothing, when the host is gone or no
// longer on from: the decision was made on a stale view.
func MoveHost(tx *store.Tx, name, from, to string) (bool, error) {
	v, ok := tx.Get(name)
	if !ok {
		return false, nil
	}
	h := &labv1.Host{}
	if err := proto.Unmarshal(v, h); err != nil {
		return false, fmt.Errorf("move host: record %s: %w", name, err)
	}
	if h.Node != from {
		return false, nil
	}
	h.Node = to
	return true, PutHost(tx, h)
}

// LazyPlacer is a placer made by newPlacer on its first Place: an apply
// whose hosts all keep their nodes does not count every node's hosts.
func LazyPlacer(newPlacer func() *Placer) *Placer {
	return &Placer{lazy: newPlacer}
}
