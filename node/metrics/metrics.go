// Package metrics exports labd's counters to Prometheus: the overlay
// socket, the cluster's members, every running host's interfaces and the
// API's calls, plus the Go runtime and process collectors.
//
// Everything is read when scraped, from the functions in Sources: the
// package keeps no copies and runs no goroutines of its own, and it does
// not import the runtime or the cluster (labd's Run adapts them).
package metrics

import (
	"iter"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/overlay"
	"github.com/labnet-dev/labnet/stack"
)

// Sources are where the metrics come from. Each is called on every scrape,
// possibly from several scrapes at once, so it must be safe for concurrent
// use and must not block. A nil source exports nothing.
type Sources struct {
	// Overlay returns the overlay socket's counters (overlay.Conn.Counters).
	Overlay func() overlay.Counters
	// OverlayPeers returns, by node name, what the overlay did with the
	// datagrams of each node sealed per pair (overlay.Peer.Counters).
	OverlayPeers func() map[string]overlay.PeerCounters
	// Members returns how many cluster members are in each state, by the
	// state's name (cluster.State.String): alive, suspect, dead, left.
	Members func() map[string]int
	// Interfaces yields every interface of every running host
	// (HostInterfaces adapts the runtime's hosts).
	Interfaces iter.Seq[Interface]
	// APICalls yields the API's calls counted so far, by method and
	// outcome (auth.Interceptor's Calls: convert each auth.CallCount
	// with APICall(c)).
	APICalls iter.Seq[APICall]
	// GossipRefused yields the gossip refused so far by node and reason
	// (cluster.Cluster's Refusals: convert each with GossipRefusal(r)).
	GossipRefused iter.Seq[GossipRefusal]
	// NodeRefusals yields the nodes' refused requests (refusals.go).
	NodeRefusals iter.Seq[NodeRefusal]
	// GossipKeys returns what the node did with the gossip keys
	// (gossipkeys.go).
	GossipKeys func() GossipKeys
}

// APICall is how many calls of a gRPC method (its full name) ended with
// an outcome: ok, denied, unauthenticated or error.
type APICall struct {
	Method  string
	Outcome string
	Count   uint64
}

// Interface is one interface of a running host, as scraped.
type Interface struct {
	Lab, Host, Name string // labs/{Lab}/hosts/{Host}, interface Name
	Counters        stack.Counters
	Impair          fabric.ImpairCounters // what its egress impairments did
}

// Host is what HostInterfaces needs of a running host; *runtime.Host has it.
type Host interface {
	Stack() *stack.Stack
	ImpairCounters(iface string) fabric.ImpairCounters
}

// HostInterfaces yields the interfaces of the hosts that hosts yields, each
// by its resource name (labs/{lab}/hosts/{host}). Hosts may stop while it
// runs: a stopped host's last counters are reported once more, which is
// harmless.
func HostInterfaces(hosts iter.Seq2[string, Host]) iter.Seq[Interface] {
	return func(yield func(Interface) bool) {
		for name, h := range hosts {
			lab, host := splitHostName(name)
			for _, nic := range h.Stack().Interfaces() {
				in := Interface{
					Lab: lab, Host: host, Name: nic.Name(),
					Counters: nic.Counters(), Impair: h.ImpairCounters(nic.Name()),
				}
				if !yield(in) {
					return
				}
			}
		}
	}
}

// splitHostName splits labs/{lab}/hosts/{host}; any other name is all host.
func splitHostName(name string) (lab, host string) {
	if p := strings.Split(name, "/"); len(p) == 4 && p[0] == "labs" && p[2] == "hosts" {
		return p[1], p[3]
	}
	return "", name
}

// Registry holds labd's collectors.
type Registry struct {
	reg *prometheus.Registry
}

// New returns a registry that reads src on every scrape.
func New(src Sources) *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if src.Overlay != nil {
		reg.MustRegister(overlayCollector(src.Overlay))
	}
	if src.OverlayPeers != nil {
		reg.MustRegister(overlayPeersCollector(src.OverlayPeers))
	}
	if src.Members != nil {
		reg.MustRegister(membersCollector(src.Members))
	}
	if src.Interfaces != nil {
		reg.MustRegister(interfaceCollector(src.Interfaces))
	}
	if src.APICalls != nil {
		reg.MustRegister(apiCallsCollector(src.APICalls))
	}
	if src.GossipRefused != nil {
		reg.MustRegister(gossipRefusedCollector(src.GossipRefused))
	}
	if src.NodeRefusals != nil {
		reg.MustRegister(nodeRefusalsCollector(src.NodeRefusals))
	}
	if src.GossipKeys != nil {
		reg.MustRegister(gossipKeysCollector(src.GossipKeys))
	}
	return &Registry{reg: reg}
}

// Handler serves the metrics in the Prometheus exposition formats.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
