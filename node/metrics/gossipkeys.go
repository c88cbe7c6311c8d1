package metrics

import "github.com/prometheus/client_golang/prometheus"

// GossipKeys is what a node did with the gossip keys (node/gossipkeys.go).
type GossipKeys struct {
	// Rotations are the rotations this node started as the leader (a
	// new key for a node's removal).
	Rotations uint64
	// Installs are the keyrings this node installed (from its replica,
	// or fetched from a control node).
	Installs uint64
	// Fetches are the keyrings this node got from a control node when
	// the cluster refused, or stopped hearing, it.
	Fetches uint64
}

var (
	gossipKeyRotations = prometheus.NewDesc("labnet_gossip_key_rotations_total",
		"Gossip key rotations this node started as the control plane's leader: a new key for a removed node.", nil, nil)
	gossipKeyInstalls = prometheus.NewDesc("labnet_gossip_key_installs_total",
		"Gossip keyrings this node installed, from the state or from a control node.", nil, nil)
	gossipKeyFetches = prometheus.NewDesc("labnet_gossip_key_fetches_total",
		"Gossip keyrings this node got from a control node (ControlService.GossipKeys) when the cluster refused, or stopped hearing, it.", nil, nil)
)

func gossipKeysCollector(src func() GossipKeys) prometheus.Collector {
	return collectorFunc{
		descs: []*prometheus.Desc{gossipKeyRotations, gossipKeyInstalls, gossipKeyFetches},
		collect: func(ch chan<- prometheus.Metric) {
			k := src()
			counter(ch, gossipKeyRotations, k.Rotations)
			counter(ch, gossipKeyInstalls, k.Installs)
			counter(ch, gossipKeyFetches, k.Fetches)
		},
	}
}
