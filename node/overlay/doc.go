// Package overlay carries the lab's virtual IP packets between labd nodes.
//
// A packet that leaves a virtual interface on one labd for an interface owned
// by another travels as a GENEVE packet (RFC 8926) in a UDP datagram: the
// bare IP packet is the payload, the VNI names the virtual network and one
// option carries the next-hop address (geneve.go). When the cluster has a
// key, the whole UDP payload is sealed with AES-256-GCM (seal.go); between
// nodes that have certificates, each datagram is sealed instead with the key
// of its pair of nodes, names its sender and carries a counter the receiver
// checks against a replay window (pairseal.go, replay.go). Conn sends
// trains of datagrams to one peer with UDP GSO and receives coalesced trains
// with UDP GRO, falling back to sendmmsg/recvmmsg (conn.go); one datagram per
// system call would cap the overlay far below what TCP needs.
//
// Like the stack's wire package, the GENEVE header has two forms: a view over
// bytes (Header) whose accessors may be used once Check has returned nil, and
// a parsed form (Geneve) with Parse and Encode.
package overlay
