// Package topology reads and writes topology files: a whole lab in one YAML
// document, which labctl parses and sends to the server as a
// *labv1.Topology (LabService.Apply, LabService.DeleteTopology).
//
// The format (docs/topology.md is the user's reference):
//
//	name: demo                    # the lab; "default" when omitted
//	description: ...              # optional
//	shared: true                  # optional: every user may view the lab
//	networks:
//	  - name: lan1                # required
//	    ipv4: 10.0.1.0/24
//	    ipv6: fd00:0:0:1::/64     # optional
//	    mtu: 1500                 # optional
//	hosts:
//	  - name: r1                  # required
//	    forwarding: true          # a router
//	    node: laptop-3            # optional: pin to a labd node
//	    owner: alice              # optional: a user who operates this host
//	    interfaces:
//	      - network: lan1         # required
//	        ipv4: 10.0.1.1/24     # optional: assigned by the server when omitted
//	        ipv6: fd00:0:0:1::1/64
//	        name: eth0            # optional; eth0, eth1, ... in order
//	        impair:               # optional: egress impairments, like netem
//	          loss: 10%           # also duplicate, reorder, corrupt
//	          delay: 20ms         # Go durations; also jitter
//	          rate: 10mbit        # bit, kbit, mbit, gbit, tbit
//	      - lan2                  # same as {network: lan2}
//	    routes:
//	      - to: default           # or a prefix: 10.0.2.0/24, fd00:0:0:2::/64
//	        via: 10.0.1.1
//	    gateway: 10.0.1.1         # same as a route {to: default, via: 10.0.1.1}
//	    gateway6: fd00:0:0:1::1   # the same for IPv6
//
// Parse checks the file's shape only: field types, unknown and duplicate
// fields, the required names, the gateway shorthands (an address of the
// right family, and not together with an explicit default route of the same
// family), and the units of impairments (a percentage from 0% to 100%, a
// non-negative duration, a whole number of bits per second), which it
// converts to the API's numbers. It expands the shorthands into routes after the host's own. All
// other validation (CIDRs, addresses, duplicates, references) is the
// server's, so that a file and an API call are judged by the same rules.
//
// Errors are one line and name the line and the field:
//
//	two-lans.yaml:14: hosts[1].interfaces[0]: unknown field "netwrk"
package topology
