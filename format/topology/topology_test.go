package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
)

const examplesDir = "../../examples"

// Shorthands for expected topologies.
func network(name, ipv4, ipv6 string) *labv1.Network {
	return &labv1.Network{Name: name, Ipv4: ipv4, Ipv6: ipv6}
}

func iface(network, ipv4, ipv6 string) *labv1.Interface {
	return &labv1.Interface{Network: network, Ipv4: ipv4, Ipv6: ipv6}
}

func route(to, via string) *labv1.Route { return &labv1.Route{To: to, Via: via} }

var twoLans = &labv1.Topology{
	Lab: "demo",
	Networks: []*labv1.Network{
		network("lan1", "10.0.1.0/24", "fd00:0:0:1::/64"),
		network("lan2", "10.0.2.0/24", "fd00:0:0:2::/64"),
	},
	Hosts: []*labv1.Host{
		{
			Name:       "r1",
			Forwarding: true,
			Interfaces: []*labv1.Interface{
				iface("lan1", "10.0.1.1/24", "fd00:0:0:1::1/64"),
				iface("lan2", "10.0.2.1/24", "fd00:0:0:2::1/64"),
			},
		},
		{
			Name:       "h1",
			Interfaces: []*labv1.Interface{iface("lan1", "10.0.1.10/24", "")},
			Routes:     []*labv1.Route{route("default", "10.0.1.1"), route("default", "fd00:0:0:1::1")},
			Services:   []string{"echo", "http"},
		},
		{
			Name:       "h2",
			Interfaces: []*labv1.Interface{iface("lan2", "10.0.2.10/24", "")},
			Routes:     []*labv1.Route{route("default", "10.0.2.1"), route("default", "fd00:0:0:2::1")},
			Services:   []string{"echo", "discard", "daytime", "chargen", "http"},
		},
	},
}

var chain = &labv1.Topology{
	Lab: "chain",
	Networks: []*labv1.Network{
		network("net1", "10.1.1.0/24", "fd00:1:0:1::/64"),
		network("net2", "10.1.2.0/24", "fd00:1:0:2::/64"),
		network("net3", "10.1.3.0/24", "fd00:1:0:3::/64"),
		network("net4", "10.1.4.0/24", "fd00:1:0:4::/64"),
	},
	Hosts: []*labv1.Host{
		{
			Name:       "a",
			Interfaces: []*labv1.Interface{iface("net1", "10.1.1.10/24", "fd00:1:0:1::10/64")},
			Routes:     []*labv1.Route{route("default", "10.1.1.1"), route("default", "fd00:1:0:1::1")},
		},
		{
			Name:       "r1",
			Forwarding: true,
			Interfaces: []*labv1.Interface{
				iface("net1", "10.1.1.1/24", "fd00:1:0:1::1/64"),
				iface("net2", "10.1.2.1/24", "fd00:1:0:2::1/64"),
			},
			Routes: []*labv1.Route{
				route("10.1.3.0/24", "10.1.2.2"),
				route("10.1.4.0/24", "10.1.2.2"),
				route("fd00:1:0:3::/64", "fd00:1:0:2::2"),
				route("fd00:1:0:4::/64", "fd00:1:0:2::2"),
			},
		},
		{
			Name:       "r2",
			Forwarding: true,
			Interfaces: []*labv1.Interface{
				iface("net2", "10.1.2.2/24", "fd00:1:0:2::2/64"),
				iface("net3", "10.1.3.2/24", "fd00:1:0:3::2/64"),
			},
			Routes: []*labv1.Route{
				route("10.1.1.0/24", "10.1.2.1"),
				route("fd00:1:0:1::/64", "fd00:1:0:2::1"),
				route("10.1.4.0/24", "10.1.3.3"),
				route("fd00:1:0:4::/64", "fd00:1:0:3::3"),
			},
		},
		{
			Name:       "r3",
			Forwarding: true,
			Interfaces: []*labv1.Interface{
				iface("net3", "10.1.3.3/24", "fd00:1:0:3::3/64"),
				iface("net4", "10.1.4.3/24", "fd00:1:0:4::3/64"),
			},
			Routes: []*labv1.Route{
				route("10.1.1.0/24", "10.1.3.2"),
				route("10.1.2.0/24", "10.1.3.2"),
				route("fd00:1:0:1::/64", "fd00:1:0:3::2"),
				route("fd00:1:0:2::/64", "fd00:1:0:3::2"),
			},
		},
		{
			Name:       "b",
			Interfaces: []*labv1.Interface{iface("net4", "10.1.4.10/24", "fd00:1:0:4::10/64")},
			Routes:     []*labv1.Route{route("default", "10.1.4.3"), route("default", "fd00:1:0:4::3")},
		},
	},
}

func TestParseExamples(t *testing.T) {
	for _, tt := range []struct {
		file string
		want *labv1.Topology
	}{
		{"two-lans.yaml", twoLans},
		{"chain.yaml", chain},
	} {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseFile(filepath.Join(examplesDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("ParseFile(%s) (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

// TestAllExamples parses every file in examples/ and round-trips it, so a
// newcomer's first apply never fails on the file itself.
func TestAllExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no examples in %s", examplesDir)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			topo, err := ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, topo)
		})
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want *labv1.Topology
	}{
		{
			name: "empty mapping is the default lab",
			in:   "{}",
			want: &labv1.Topology{Lab: "default"},
		},
		{
			name: "lab name omitted",
			in:   "networks: [{name: lan1, ipv4: 10.0.1.0/24}]",
			want: &labv1.Topology{Lab: "default", Networks: []*labv1.Network{network("lan1", "10.0.1.0/24", "")}},
		},
		{
			name: "every field",
			in: `
name: demo
description: |
  two lines
  of text
networks:
  - name: lan1
    ipv4: 10.0.1.0/24
    ipv6: fd00:0:0:1::/64
    mtu: 9000
hosts:
  - name: r1
    forwarding: true
    node: laptop-3
    interfaces:
      - network: lan1
        ipv4: 10.0.1.1
        ipv6: fd00:0:0:1::1/64
        name: wan0
    routes:
      - to: 10.0.2.0/24
        via: 10.0.1.2
`,
			want: &labv1.Topology{
				Lab:         "demo",
				Description: "two lines\nof text\n",
				Networks:    []*labv1.Network{{Name: "lan1", Ipv4: "10.0.1.0/24", Ipv6: "fd00:0:0:1::/64", Mtu: 9000}},
				Hosts: []*labv1.Host{{
					Name:       "r1",
					Forwarding: true,
					Node:       "laptop-3",
					Interfaces: []*labv1.Interface{{Name: "wan0", Network: "lan1", Ipv4: "10.0.1.1", Ipv6: "fd00:0:0:1::1/64"}},
					Routes:     []*labv1.Route{route("10.0.2.0/24", "10.0.1.2")},
				}},
			},
		},
		{
			name: "bare interfaces",
			in:   "hosts: [{name: r1, interfaces: [lan1, {network: lan2, ipv4: 10.0.2.1/24}, lan3]}]",
			want: &labv1.Topology{Lab: "default", Hosts: []*labv1.Host{{
				Name: "r1",
				Interfaces: []*labv1.Interface{
					iface("lan1", "", ""),
					iface("lan2", "10.0.2.1/24", ""),
					iface("lan3", "", ""),
				},
			}}},
		},
		{
			name: "gateways come after the routes, v4 first",
			in: `
hosts:
  - name: h1
    gateway6: fd00:0:0:1::1
    gateway: 10.0.1.1
    routes: [{to: 10.9.0.0/16, via: 10.0.1.2}]
    interfaces: [lan1]
`,
			want: &labv1.Topology{Lab: "default", Hosts: []*labv1.Host{{
				Name:       "h1",
				Interfaces: []*labv1.Interface{iface("lan1", "", "")},
				Routes: []*labv1.Route{
					route("10.9.0.0/16", "10.0.1.2"),
					route("default", "10.0.1.1"),
					route("default", "fd00:0:0:1::1"),
				},
			}}},
		},
		{
			name: "gateway beside a default route of the other family",
			in:   "hosts: [{name: h1, gateway: 10.0.1.1, routes: [{to: default, via: 'fd00::1'}]}]",
			want: &labv1.Topology{Lab: "default", Hosts: []*labv1.Host{{
				Name:   "h1",
				Routes: []*labv1.Route{route("default", "fd00::1"), route("default", "10.0.1.1")},
			}}},
		},
		{
			// The server judges values; the parser passes them through.
			name: "values are not validated",
			in:   "networks: [{name: LAN_1, ipv4: 10.0.1.5/24}]\nhosts: [{name: h, interfaces: [nowhere], routes: [{to: x, via: y}]}]",
			want: &labv1.Topology{
				Lab:      "default",
				Networks: []*labv1.Network{network("LAN_1", "10.0.1.5/24", "")},
				Hosts: []*labv1.Host{{
					Name:       "h",
					Interfaces: []*labv1.Interface{iface("nowhere", "", "")},
					Routes:     []*labv1.Route{route("x", "y")},
				}},
			},
		},
		{
			name: "null fields are omitted fields",
			in:   "name:\ndescription: ~\nnetworks:\nhosts:\n  - name: h\n    interfaces:\n    gateway: null\n",
			want: &labv1.Topology{Lab: "default", Hosts: []*labv1.Host{{Name: "h"}}},
		},
		{
			name: "anchors and aliases",
			in: `
name: &lab demo
hosts:
  - name: a
    routes: &routes
      - {to: 10.9.0.0/16, via: 10.0.1.1}
  - name: b
    routes: *routes
  - name: *lab
`,
			want: &labv1.Topology{Lab: "demo", Hosts: []*labv1.Host{
				{Name: "a", Routes: []*labv1.Route{route("10.9.0.0/16", "10.0.1.1")}},
				{Name: "b", Routes: []*labv1.Route{route("10.9.0.0/16", "10.0.1.1")}},
				{Name: "demo"},
			}},
		},
		{
			name: "impairments",
			in: `
hosts:
  - name: h1
    interfaces:
      - network: lan1
        impair:
          loss: 10%
          delay: 20ms
          jitter: 5ms
          duplicate: 2%
          reorder: 5%
          corrupt: 0.5%
          rate: 10mbit
      - network: lan2
        impair: {rate: 1.5Gbit, delay: 1m30s}
      - network: lan3
        impair: {}
      - network: lan4
        impair: {loss: 0%, delay: 0s}
`,
			want: &labv1.Topology{Lab: "default", Hosts: []*labv1.Host{{
				Name: "h1",
				Interfaces: []*labv1.Interface{
					{Network: "lan1", Impair: &labv1.Impairment{
						LossPercent: 10, Delay: durationpb.New(20 * time.Millisecond), Jitter: durationpb.New(5 * time.Millisecond),
						DuplicatePercent: 2, ReorderPercent: 5, CorruptPercent: 0.5, RateBps: 10_000_000,
					}},
					{Network: "lan2", Impair: &labv1.Impairment{RateBps: 1_500_000_000, Delay: durationpb.New(90 * time.Second)}},
					// Empty, or all zero: no impairment.
					iface("lan3", "", ""),
					iface("lan4", "", ""),
				},
			}}},
		},
		{
			name: "leading document marker and comments",
			in:   "# a lab\n---\nname: x # the name\n",
			want: &labv1.Topology{Lab: "x"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
			roundTrip(t, got)
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want string
	}{
		{
			name: "unknown field in an interface",
			in: `name: demo
networks:
  - name: lan1
    ipv4: 10.0.1.0/24
hosts:
  - name: r1
    interfaces: [lan1]
  - name: h1
    interfaces:
      - netwrk: lan1
`,
			want: `line 10: hosts[1].interfaces[0]: unknown field "netwrk"`,
		},
		{
			name: "unknown top-level field",
			in:   "name: demo\nnodes: []\n",
			want: `line 2: unknown field "nodes"`,
		},
		{
			name: "unknown field in a network",
			in:   "networks:\n  - name: lan1\n    cidr: 10.0.1.0/24\n",
			want: `line 3: networks[0]: unknown field "cidr"`,
		},
		{
			name: "unknown field in a route",
			in:   "hosts:\n  - name: h1\n    routes:\n      - {to: default, gw: 10.0.1.1}\n",
			want: `line 4: hosts[0].routes[0]: unknown field "gw"`,
		},
		{
			name: "field given twice",
			in:   "networks:\n  - name: lan1\n    name: lan2\n",
			want: `line 3: networks[0].name: given twice (first on line 2)`,
		},
		{
			name: "merge keys",
			in:   "hosts:\n  - &h {name: a}\n  - <<: *h\n    name: b\n",
			want: `line 3: hosts[1]: merge keys (<<) are not supported`,
		},
		{
			name: "string wanted",
			in:   "networks:\n  - name: lan1\n    ipv4: [10.0.1.0/24]\n",
			want: `line 3: networks[0].ipv4: must be a string`,
		},
		{
			name: "top-level string wanted",
			in:   "name: {lab: demo}\n",
			want: `line 1: name: must be a string`,
		},
		{
			name: "bool wanted",
			in:   "hosts:\n  - name: r1\n    forwarding: 1\n",
			want: `line 3: hosts[0].forwarding: must be true or false`,
		},
		{
			name: "negative mtu",
			in:   "networks:\n  - name: lan1\n    mtu: -1\n",
			want: `line 3: networks[0].mtu: must be a whole number from 0 to 4294967295`,
		},
		{
			name: "mtu as a string",
			in:   "networks:\n  - name: lan1\n    mtu: \"1500\"\n",
			want: `line 3: networks[0].mtu: must be a whole number from 0 to 4294967295`,
		},
		{
			name: "list wanted",
			in:   "networks:\n  name: lan1\n",
			want: `line 2: networks: must be a list`,
		},
		{
			name: "mapping wanted",
			in:   "hosts:\n  - h1\n",
			want: `line 2: hosts[0]: must be a mapping of name, forwarding, node, owner, interfaces, routes, services, failover, gateway, gateway6`,
		},
		{
			name: "interface neither name nor mapping",
			in:   "hosts:\n  - name: h1\n    interfaces: [[lan1]]\n",
			want: `line 3: hosts[0].interfaces[0]: must be a network name or a mapping of network, ipv4, ipv6, name, impair`,
		},
		{
			name: "unknown impairment",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair:\n          loss: 1%\n          lose: 10%\n",
			want: `line 7: hosts[0].interfaces[0].impair: unknown field "lose"`,
		},
		{
			name: "impair not a mapping",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - {network: lan1, impair: 10%}\n",
			want: `line 4: hosts[0].interfaces[0].impair: must be a mapping of loss, delay, jitter, duplicate, reorder, corrupt, rate`,
		},
		{
			name: "loss without a percent sign",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair:\n          loss: 10\n",
			want: `line 6: hosts[0].interfaces[0].impair.loss: "10" is not a percentage such as 10% (the % sign is required)`,
		},
		{
			name: "loss above 100%",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair: {loss: 150%}\n",
			want: `line 5: hosts[0].interfaces[0].impair.loss: "150%" is out of range 0%-100%`,
		},
		{
			name: "negative duplicate",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair: {duplicate: -2%}\n",
			want: `line 5: hosts[0].interfaces[0].impair.duplicate: "-2%" is out of range 0%-100%`,
		},
		{
			name: "corrupt not a number",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair: {corrupt: some%}\n",
			want: `line 5: hosts[0].interfaces[0].impair.corrupt: "some%" is not a percentage such as 10%`,
		},
		{
			name: "reorder as a list",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair: {reorder: [5%]}\n",
			want: `line 5: hosts[0].interfaces[0].impair.reorder: must be a percentage such as 10%`,
		},
		{
			name: "delay without a unit",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair:\n          delay: 20\n",
			want: `line 6: hosts[0].interfaces[0].impair.delay: "20" is not a duration such as 20ms (a unit is required: ns, us, ms, s, m, h)`,
		},
		{
			name: "delay not a duration",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair:\n          delay: soon\n",
			want: `line 6: hosts[0].interfaces[0].impair.delay: "soon" is not a duration such as 20ms`,
		},
		{
			name: "negative jitter",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair:\n          jitter: -5ms\n",
			want: `line 6: hosts[0].interfaces[0].impair.jitter: "-5ms" is negative`,
		},
		{
			name: "rate with an unknown unit",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair:\n          rate: 10mb\n",
			want: `line 6: hosts[0].interfaces[0].impair.rate: "10mb": unknown unit "mb" (units: bit, kbit, mbit, gbit, tbit)`,
		},
		{
			name: "rate not a number",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair:\n          rate: fast\n",
			want: `line 6: hosts[0].interfaces[0].impair.rate: "fast" is not a rate such as 10mbit (units: bit, kbit, mbit, gbit, tbit)`,
		},
		{
			name: "rate with a fraction of a bit",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair:\n          rate: 1.5bit\n",
			want: `line 6: hosts[0].interfaces[0].impair.rate: "1.5bit" is not a whole number of bits per second`,
		},
		{
			name: "rate too large",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair:\n          rate: 20000000tbit\n",
			want: `line 6: hosts[0].interfaces[0].impair.rate: "20000000tbit" is too large`,
		},
		{
			name: "negative rate",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair:\n          rate: -10mbit\n",
			want: `line 6: hosts[0].interfaces[0].impair.rate: "-10mbit" is not a rate such as 10mbit (units: bit, kbit, mbit, gbit, tbit)`,
		},
		{
			name: "impairment given twice",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - network: lan1\n        impair: {loss: 1%, loss: 2%}\n",
			want: `line 5: hosts[0].interfaces[0].impair.loss: given twice (first on line 5)`,
		},
		{
			name: "network without a name",
			in:   "networks:\n  - ipv4: 10.0.1.0/24\n",
			want: `line 2: networks[0].name: required`,
		},
		{
			name: "host with an empty name",
			in:   "hosts:\n  - name: r1\n  - name: \"\"\n    forwarding: true\n",
			want: `line 3: hosts[1].name: required`,
		},
		{
			name: "null host",
			in:   "hosts:\n  - name: r1\n  - ~\n",
			want: `line 3: hosts[1]: empty list item`,
		},
		{
			name: "empty route",
			in:   "hosts:\n  - name: r1\n    routes:\n      -\n      - {to: default, via: 10.0.0.1}\n",
			want: `line 4: hosts[0].routes[0]: empty list item`,
		},
		{
			name: "interface without a network",
			in:   "hosts:\n  - name: h1\n    interfaces:\n      - ipv4: 10.0.1.10\n",
			want: `line 4: hosts[0].interfaces[0].network: required`,
		},
		{
			name: "bare interface with an empty name",
			in:   "hosts:\n  - name: h1\n    interfaces: [lan1, '']\n",
			want: `line 3: hosts[0].interfaces[1].network: required`,
		},
		{
			name: "gateway not IPv4",
			in:   "hosts:\n  - name: h1\n    gateway: fd00:0:0:1::1\n",
			want: `line 3: hosts[0].gateway: "fd00:0:0:1::1" is not an IPv4 address`,
		},
		{
			name: "gateway not an address",
			in:   "hosts:\n  - name: h1\n    gateway: r1\n",
			want: `line 3: hosts[0].gateway: "r1" is not an IPv4 address`,
		},
		{
			name: "gateway6 not IPv6",
			in:   "hosts:\n  - name: h1\n    gateway6: 10.0.1.1\n",
			want: `line 3: hosts[0].gateway6: "10.0.1.1" is not an IPv6 address`,
		},
		{
			name: "gateway and a default route",
			in: `hosts:
  - name: h1
    routes:
      - to: 10.0.2.0/24
        via: 10.0.1.1
      - to: default
        via: 10.0.1.1
    gateway: 10.0.1.1
`,
			want: `line 8: hosts[0].gateway: conflicts with hosts[0].routes[1]: both set the IPv4 default route`,
		},
		{
			name: "gateway6 and a ::/0 route",
			in:   "hosts:\n  - name: h1\n    gateway6: fd00::1\n    routes: [{to: '::/0', via: 'fd00::2'}]\n",
			want: `line 3: hosts[0].gateway6: conflicts with hosts[0].routes[0]: both set the IPv6 default route`,
		},
		{
			name: "malformed YAML",
			in:   "name: demo\nnetworks:\n  - name: lan1\n   ipv4: 10.0.1.0/24\n",
			want: `line 4: invalid YAML: did not find expected '-' indicator`,
		},
		{
			name: "unclosed flow sequence",
			in:   "name: demo\nhosts: [\n",
			want: `line 2: invalid YAML: did not find expected node content`,
		},
		{
			name: "tab indentation",
			in:   "name: demo\n\tnetworks: []\n",
			want: `line 2: invalid YAML: found a tab character that violates indentation`,
		},
		{
			name: "empty file",
			in:   "",
			want: `empty document: no topology`,
		},
		{
			name: "only comments",
			in:   "# nothing yet\n",
			want: `empty document: no topology`,
		},
		{
			name: "null document",
			in:   "---\n~\n",
			want: `line 2: empty document: no topology`,
		},
		{
			name: "not a mapping",
			in:   "- name: demo\n",
			want: `line 1: a topology must be a mapping of name, description, shared, networks, hosts`,
		},
		{
			name: "two documents",
			in:   "name: a\n---\nname: b\n",
			want: `line 2: a second YAML document: one topology per file`,
		},
		{
			name: "unknown field holding an alias bomb",
			in: `a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
hosts: [{name: h, interfaces: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}]
`,
			want: `line 1: unknown field "a"`,
		},
		{
			name: "aliases expanding too far",
			in: `hosts:
  - name: h
    routes: &r [` + strings.Repeat("{to: a, via: b}, ", 40) + `]
` + strings.Repeat("  - {name: x, routes: *r}\n", 200),
			want: `line 63: aliases expand to too large a document`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q; got %v", tt.want, got)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error:\n got %s\nwant %s", got, tt.want)
			}
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Errorf("Parse error %T is not an *Error", err)
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "two-lans.yaml")
	data, err := os.ReadFile(filepath.Join(examplesDir, "two-lans.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Misspell h1's interface field, on line 27 of the example.
	bad := strings.Replace(string(data), "      - network: lan1\n        ipv4: 10.0.1.10/24", "      - netwrk: lan1\n        ipv4: 10.0.1.10/24", 1)
	if bad == string(data) {
		t.Fatal("example changed: cannot find h1's interface")
	}
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	line := 1 + strings.Count(bad[:strings.Index(bad, "netwrk")], "\n")
	want := path + ":" + strconv.Itoa(line) + `: hosts[1].interfaces[0]: unknown field "netwrk"`
	if _, err := ParseFile(path); err == nil || err.Error() != want {
		t.Errorf("ParseFile error:\n got %v\nwant %s", err, want)
	}

	missing := filepath.Join(dir, "missing.yaml")
	if _, err := ParseFile(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("ParseFile(missing) = %v, want a not-exist error naming the file", err)
	}
}

func TestMarshal(t *testing.T) {
	in := &labv1.Topology{
		Lab:         "demo",
		Description: "a lab",
		Networks: []*labv1.Network{
			{Name: "lan1", Ipv4: "10.0.1.0/24", Ipv6: "fd00:0:0:1::/64", Mtu: 9000, Vni: 7},
			network("lan2", "10.0.2.0/24", ""),
		},
		Hosts: []*labv1.Host{
			{
				Name:       "r1",
				Forwarding: true,
				Node:       "laptop-3",
				Interfaces: []*labv1.Interface{
					{Name: "eth0", Network: "lan1", Ipv4: "10.0.1.1/24"},
					iface("lan2", "", ""),
				},
			},
			{
				Name:       "h1",
				Interfaces: []*labv1.Interface{iface("lan1", "", "")},
				Routes:     []*labv1.Route{route("default", "10.0.1.1")},
			},
		},
	}
	want := `name: demo
description: a lab
networks:
  - name: lan1
    ipv4: 10.0.1.0/24
    ipv6: fd00:0:0:1::/64
    mtu: 9000
  - name: lan2
    ipv4: 10.0.2.0/24
hosts:
  - name: r1
    forwarding: true
    node: laptop-3
    interfaces:
      - network: lan1
        ipv4: 10.0.1.1/24
        name: eth0
      - lan2
  - name: h1
    interfaces:
      - lan1
    routes:
      - to: default
        via: 10.0.1.1
`
	got, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("Marshal (-want +got):\n%s", diff)
	}

	// The VNI is output only: everything else comes back.
	in.Networks[0].Vni = 0
	roundTrip(t, in)

	if _, err := Marshal(nil); err == nil {
		t.Error("Marshal(nil) succeeded")
	}
}

func TestRoundTripOddStrings(t *testing.T) {
	for _, s := range []string{"true", "~", "null", "1500", "0x10", "- a", "a: b", "#x", "'q'", "\"dq\"", " lead", "trail ", "two\nlines", "tab\there", "\xff\xfe", "", "*a", "&a", "<<", "yes"} {
		t.Run(s, func(t *testing.T) {
			roundTrip(t, &labv1.Topology{
				Lab:         "x" + s,
				Description: s,
				Networks:    []*labv1.Network{network("n"+s, s, s)},
				Hosts: []*labv1.Host{{
					Name:       "h" + s,
					Node:       s,
					Interfaces: []*labv1.Interface{iface("n"+s, s, s), {Network: "n" + s, Name: s}},
					Routes:     []*labv1.Route{route(s, s)},
				}},
			})
		})
	}
}

// roundTrip checks that Parse(Marshal(want)) equals want.
func roundTrip(t *testing.T, want *labv1.Topology) {
	t.Helper()
	data, err := Marshal(want)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Marshal(t)): %v\n%s", err, data)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("Parse(Marshal(t)) (-want +got):\n%s\n%s", diff, data)
	}
}

func TestParseServices(t *testing.T) {
	got, err := Parse([]byte("hosts:\n  - name: h1\n    services: [echo, http]\n    interfaces: [lan1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Hosts[0].Services; len(s) != 2 || s[0] != "echo" || s[1] != "http" {
		t.Fatalf("services = %v", s)
	}
	out, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out)
	if err != nil || len(again.Hosts[0].Services) != 2 {
		t.Fatalf("round trip: %v %v\n%s", again, err, out)
	}
	if _, err := Parse([]byte("hosts:\n  - name: h1\n    services: echo\n")); err == nil || !strings.Contains(err.Error(), "hosts[0].services") {
		t.Fatalf("services as a string: %v", err)
	}
}

func TestParseFailover(t *testing.T) {
	got, err := Parse([]byte("hosts:\n  - name: h1\n    node: n2\n    failover: false\n    interfaces: [lan1]\n  - name: h2\n    failover: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Hosts[0].NoFailover || got.Hosts[1].NoFailover {
		t.Fatalf("no_failover = %v, %v", got.Hosts[0].NoFailover, got.Hosts[1].NoFailover)
	}
	out, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out)
	if err != nil || !again.Hosts[0].NoFailover {
		t.Fatalf("round trip: %v\n%s", err, out)
	}
}

func TestParseShared(t *testing.T) {
	got, err := Parse([]byte("name: demo\nshared: true\nnetworks:\n  - name: lan1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Shared {
		t.Fatal("shared: true parsed as false")
	}
	out, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "name: demo\nshared: true\n") {
		t.Errorf("Marshal does not write shared at the top:\n%s", out)
	}
	roundTrip(t, got)
	roundTrip(t, &labv1.Topology{Lab: "private"})
	if out, _ := Marshal(&labv1.Topology{Lab: "private"}); strings.Contains(string(out), "shared") {
		t.Errorf("Marshal writes shared: false:\n%s", out)
	}
	if _, err := Parse([]byte("shared: everyone\n")); err == nil || !strings.Contains(err.Error(), "shared") {
		t.Errorf("shared: everyone: %v, want an error naming shared", err)
	}
}

// TestParseHostOwner: a host's owner round-trips.
func TestParseHostOwner(t *testing.T) {
	in := "name: class\nshared: true\nnetworks:\n  - name: lan\nhosts:\n  - name: alice\n    owner: alice\n    interfaces:\n      - lan\n"
	got, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got.Hosts[0].GetOwner() != "alice" {
		t.Fatalf("owner = %q, want alice", got.Hosts[0].GetOwner())
	}
	out, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "    owner: alice\n") {
		t.Errorf("Marshal drops the owner:\n%s", out)
	}
}
