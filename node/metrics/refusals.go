package metrics

import (
	"iter"

	"github.com/prometheus/client_golang/prometheus"
)

// NodeRefusal is how many requests of a node were refused for a reason
// at one door: "api" (a call with a node certificate its identity record
// refuses), "enroll" (an enrolment) or "raft" (a raft connection: node is
// the peer's address when its certificate was not verified).
type NodeRefusal struct {
	Where, Node, Reason string
	Count               uint64
}

var nodeRefusals = prometheus.NewDesc("labnet_node_refusals_total",
	"Requests of nodes refused, by door (api: calls with a node certificate; enroll: enrolments; raft: raft connections), node and reason (removed, old_certificate, no_invite, invite_expired, wrong_node, wrong_kind, bad_token, bad_proof, not_loopback, invite_used; raft's: no_certificate, bad_certificate, not_control, demoted, handshake, refused_by_peer). Appear once refused.",
	[]string{"where", "node", "reason"}, nil)

func nodeRefusalsCollector(src iter.Seq[NodeRefusal]) prometheus.Collector {
	return collectorFunc{
		descs: []*prometheus.Desc{nodeRefusals},
		collect: func(ch chan<- prometheus.Metric) {
			for r := range src {
				counter(ch, nodeRefusals, r.Count, r.Where, r.Node, r.Reason)
			}
		},
	}
}
