// Package capture turns the packets that virtual interfaces send, receive
// and drop (stack taps) into what people read: pcapng files for Wireshark
// and tshark, one-line live decodes in the style of tcpdump, and ladder
// (sequence) diagrams of TCP, UDP and ICMP flows.
//
// A Packet is one observation: a packet crossing one interface in one
// direction at one time, with what became of it. The daemon produces them
// (node/api's Capture call, from stack taps through node/runtime's fromTap),
// labctl consumes them; this package knows nothing of gRPC, of the stack
// (only its packet views, stack/wire) or of the daemon, so labctl links
// neither.
package capture
