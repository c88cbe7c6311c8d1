package metrics

import (
	"iter"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/overlay"
)

// The collectors are functions: each scrape calls its source once and turns
// the result into constant metrics, so nothing is cached between scrapes.

// collectorFunc is a prometheus.Collector with fixed descriptions.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

var (
	overlayPackets = prometheus.NewDesc("labnet_overlay_packets_total",
		"GENEVE datagrams sent (tx) and received (rx) on the overlay socket, counted each even inside a GSO or GRO batch.",
		[]string{"direction"}, nil)
	overlayBytes = prometheus.NewDesc("labnet_overlay_bytes_total",
		"UDP payload bytes of the overlay's datagrams as on the wire (sealed, with a cluster key).",
		[]string{"direction"}, nil)
	overlaySyscalls = prometheus.NewDesc("labnet_overlay_syscalls_total",
		"Batch system calls made by the overlay socket (sendmmsg for tx, recvmmsg for rx).",
		[]string{"direction"}, nil)
	overlayDrops = prometheus.NewDesc("labnet_overlay_drops_total",
		"Datagrams received on the overlay socket and dropped: malformed (not GENEVE labnet accepts), bad_tag (not sealed with the cluster key, or with the pair's key), unknown_sender (not from a cluster member, a removed node, or a sender id no node has), replay and too_old (a counter already received, or below the sender's replay window), not_on_network and spoofed_source (the sender runs no interface on the packet's network, or not with its source address), no_owner (no interface of this node owns the next hop).",
		[]string{"reason"}, nil)
	overlayTxDrops = prometheus.NewDesc("labnet_overlay_tx_drops_total",
		"Packets the overlay was asked to carry to another node and did not: queue_full (the peer's send queue was full), no_route (no overlay path to the node), too_big (larger than a datagram), down (the overlay had stopped), send_failed (queued, then refused by the kernel). All but send_failed are also drops of the sending interface.",
		[]string{"reason"}, nil)
)

func overlayCollector(src func() overlay.Counters) prometheus.Collector {
	return collectorFunc{
		descs: []*prometheus.Desc{overlayPackets, overlayBytes, overlaySyscalls, overlayDrops, overlayTxDrops},
		collect: func(ch chan<- prometheus.Metric) {
			c := src()
			counter(ch, overlayPackets, c.PacketsSent, "tx")
			counter(ch, overlayPackets, c.PacketsReceived, "rx")
			counter(ch, overlayBytes, c.BytesSent, "tx")
			counter(ch, overlayBytes, c.BytesReceived, "rx")
			counter(ch, overlaySyscalls, c.SendCalls, "tx")
			counter(ch, overlaySyscalls, c.ReceiveCalls, "rx")
			counter(ch, overlayDrops, c.DroppedMalformed, "malformed")
			counter(ch, overlayDrops, c.DroppedBadTag, "bad_tag")
			counter(ch, overlayDrops, c.DroppedUnknownSender, "unknown_sender")
			counter(ch, overlayDrops, c.DroppedReplay, "replay")
			counter(ch, overlayDrops, c.DroppedTooOld, "too_old")
			counter(ch, overlayDrops, c.DroppedNotOnNetwork, "not_on_network")
			counter(ch, overlayDrops, c.DroppedSpoofedSource, "spoofed_source")
			counter(ch, overlayDrops, c.Undelivered, "no_owner")
			counter(ch, overlayTxDrops, c.TxQueueFull, "queue_full")
			counter(ch, overlayTxDrops, c.TxNoRoute, "no_route")
			counter(ch, overlayTxDrops, c.TxTooBig, "too_big")
			counter(ch, overlayTxDrops, c.TxDown, "down")
			counter(ch, overlayTxDrops, c.TxSendFailed, "send_failed")
		},
	}
}

var (
	overlayPeerPackets = prometheus.NewDesc("labnet_overlay_node_packets_total",
		"Datagrams sealed per pair of nodes received from each node and opened.",
		[]string{"node"}, nil)
	overlayPeerDrops = prometheus.NewDesc("labnet_overlay_node_drops_total",
		"Datagrams sealed per pair of nodes claiming to be from each node and dropped: replay (a counter already received), too_old (below the node's replay window), bad_tag (not sealed with the pair's key: altered, or another node claiming this one's id), not_on_network (the node runs no interface on the packet's network), spoofed_source (it does, but not with the packet's source address).",
		[]string{"node", "reason"}, nil)
)

func overlayPeersCollector(src func() map[string]overlay.PeerCounters) prometheus.Collector {
	return collectorFunc{
		descs: []*prometheus.Desc{overlayPeerPackets, overlayPeerDrops},
		collect: func(ch chan<- prometheus.Metric) {
			for node, c := range src() {
				counter(ch, overlayPeerPackets, c.Received, node)
				counter(ch, overlayPeerDrops, c.Replayed, node, "replay")
				counter(ch, overlayPeerDrops, c.TooOld, node, "too_old")
				counter(ch, overlayPeerDrops, c.BadTag, node, "bad_tag")
				counter(ch, overlayPeerDrops, c.NotOnNetwork, node, "not_on_network")
				counter(ch, overlayPeerDrops, c.SpoofedSource, node, "spoofed_source")
			}
		},
	}
}

var clusterMembers = prometheus.NewDesc("labnet_cluster_members",
	"Cluster members (this node included) in each state, as this node sees them.",
	[]string{"state"}, nil)

// memberStates are always exported, at 0 when no member is in them, so
// that a state does not disappear from graphs and alerts.
var memberStates = []string{"alive", "suspect", "dead", "left"}

func membersCollector(src func() map[string]int) prometheus.Collector {
	return collectorFunc{
		descs: []*prometheus.Desc{clusterMembers},
		collect: func(ch chan<- prometheus.Metric) {
			counts := src()
			for _, s := range memberStates {
				ch <- prometheus.MustNewConstMetric(clusterMembers, prometheus.GaugeValue, float64(counts[s]), s)
			}
			for s, n := range counts {
				if !isMemberState(s) {
					ch <- prometheus.MustNewConstMetric(clusterMembers, prometheus.GaugeValue, float64(n), s)
				}
			}
		},
	}
}

func isMemberState(s string) bool {
	for _, m := range memberStates {
		if s == m {
			return true
		}
	}
	return false
}

var (
	ifaceLabels  = []string{"lab", "host", "iface", "direction"}
	ifacePackets = prometheus.NewDesc("labnet_interface_packets_total",
		"Packets a host's interface received (rx) and sent (tx); tx counts the packets the link took, impaired ones included.",
		ifaceLabels, nil)
	ifaceBytes = prometheus.NewDesc("labnet_interface_bytes_total",
		"IP bytes a host's interface received (rx) and sent (tx).",
		ifaceLabels, nil)
	ifaceDropped = prometheus.NewDesc("labnet_interface_dropped_total",
		"Packets of a host's interface dropped: rx queue_full (the host's receive queue was full), tx link (the network refused it: no interface owns the next hop), tx overlay_queue_full, no_route_to_node, overlay_too_big and overlay_down (the overlay to the node that owns the next hop refused it), tx impair_loss (the impairment's loss), tx impair_limit (the impairment already held its limit of packets).",
		append(ifaceLabels[:len(ifaceLabels):len(ifaceLabels)], "reason"), nil)
	ifaceImpaired = prometheus.NewDesc("labnet_interface_impaired_total",
		"Packets a host's interface sent that its impairments changed: duplicated (copies sent), corrupted (a bit flipped), delayed (held back by delay, jitter or rate), reordered (sent ahead of delayed ones).",
		[]string{"lab", "host", "iface", "action"}, nil)
)

func interfaceCollector(src func(yield func(Interface) bool)) prometheus.Collector {
	return collectorFunc{
		descs: []*prometheus.Desc{ifacePackets, ifaceBytes, ifaceDropped, ifaceImpaired},
		collect: func(ch chan<- prometheus.Metric) {
			for in := range src {
				c, ic := in.Counters, in.Impair
				l, h, i := in.Lab, in.Host, in.Name
				counter(ch, ifacePackets, c.RxPackets, l, h, i, "rx")
				counter(ch, ifacePackets, c.TxPackets, l, h, i, "tx")
				counter(ch, ifaceBytes, c.RxBytes, l, h, i, "rx")
				counter(ch, ifaceBytes, c.TxBytes, l, h, i, "tx")
				counter(ch, ifaceDropped, c.RxDropped, l, h, i, "rx", "queue_full")
				counter(ch, ifaceDropped, linkDrops(c.TxDropped, ic), l, h, i, "tx", "link")
				counter(ch, ifaceDropped, ic.OverlayQueueFull, l, h, i, "tx", "overlay_queue_full")
				counter(ch, ifaceDropped, ic.NoRouteToNode, l, h, i, "tx", "no_route_to_node")
				counter(ch, ifaceDropped, ic.OverlayTooBig, l, h, i, "tx", "overlay_too_big")
				counter(ch, ifaceDropped, ic.OverlayDown, l, h, i, "tx", "overlay_down")
				counter(ch, ifaceDropped, ic.Dropped, l, h, i, "tx", "impair_loss")
				counter(ch, ifaceDropped, ic.QueueDropped, l, h, i, "tx", "impair_limit")
				counter(ch, ifaceImpaired, ic.Duplicated, l, h, i, "duplicated")
				counter(ch, ifaceImpaired, ic.Corrupted, l, h, i, "corrupted")
				counter(ch, ifaceImpaired, ic.Delayed, l, h, i, "delayed")
				counter(ch, ifaceImpaired, ic.Reordered, l, h, i, "reordered")
			}
		},
	}
}

// linkDrops is what an interface's transmit drops leave when the
// overlay's refusals, which it counts too, are taken out: the packets no
// interface owned the next hop of. The port's counters are read after the
// interface's and count a refusal first, so a scrape can see a refusal
// the interface has not counted yet: the difference stops at 0.
func linkDrops(txDropped uint64, ic fabric.ImpairCounters) uint64 {
	refused := ic.OverlayQueueFull + ic.NoRouteToNode + ic.OverlayTooBig + ic.OverlayDown
	if refused > txDropped {
		return 0
	}
	return txDropped - refused
}

var apiCalls = prometheus.NewDesc("labnet_api_calls_total",
	"Calls of the gRPC API by method (its full name) and outcome: ok, denied (PermissionDenied: the caller may not), unauthenticated (no valid token or certificate) or error (any other failure). Methods appear once called.",
	[]string{"method", "outcome"}, nil)

func apiCallsCollector(src iter.Seq[APICall]) prometheus.Collector {
	return collectorFunc{
		descs: []*prometheus.Desc{apiCalls},
		collect: func(ch chan<- prometheus.Metric) {
			for c := range src {
				counter(ch, apiCalls, c.Count, c.Method, c.Outcome)
			}
		},
	}
}
