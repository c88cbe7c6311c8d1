package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

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
		"Datagrams received on the overlay socket and dropped: malformed (not GENEVE labnet accepts), bad_tag (not sealed with the cluster key), unknown_sender (not from a cluster member).",
		[]string{"reason"}, nil)
)

func overlayCollector(src func() overlay.Counters) prometheus.Collector {
	return collectorFunc{
		descs: []*prometheus.Desc{overlayPackets, overlayBytes, overlaySyscalls, overlayDrops},
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
		"Packets of a host's interface dropped: rx queue_full (the host's receive queue was full), tx link (the network refused it: no interface owns the next hop), tx impair_loss (the impairment's loss), tx impair_limit (the impairment already held its limit of packets).",
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
				counter(ch, ifaceDropped, c.TxDropped, l, h, i, "tx", "link")
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
