package metrics

import (
	"iter"

	"github.com/prometheus/client_golang/prometheus"
)

// GossipRefusal is how many times gossip about a node was refused for a
// reason (node/cluster's Refusal: convert each with GossipRefusal(r)).
type GossipRefusal struct {
	Node   string
	Reason string
	Count  uint64
}

var gossipRefused = prometheus.NewDesc("labnet_gossip_refused_total",
	"Gossip about a node refused by its node identity record, by node and reason: unknown_node (no record in this node's replica yet), removed, unsigned, bad_signature or bad_meta. Nodes appear once refused; past 1024 pairs new nodes count as \"other\".",
	[]string{"node", "reason"}, nil)

func gossipRefusedCollector(src iter.Seq[GossipRefusal]) prometheus.Collector {
	return collectorFunc{
		descs: []*prometheus.Desc{gossipRefused},
		collect: func(ch chan<- prometheus.Metric) {
			for r := range src {
				counter(ch, gossipRefused, r.Count, r.Node, r.Reason)
			}
		},
	}
}
