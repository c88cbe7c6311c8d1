package probe

import (
	"errors"
	"fmt"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// localError words a send error as ping(8) does.
func localError(err error) string {
	switch {
	case errors.Is(err, stack.ErrHostUnreachable):
		return "Destination Host Unreachable"
	case errors.Is(err, stack.ErrNoRoute):
		return "Network is unreachable"
	case errors.Is(err, stack.ErrMessageTooLong):
		return "Message too long"
	}
	return err.Error()
}

// icmpWords is how ping(8) and traceroute(8) word an ICMP error: ping's
// message and traceroute's annotation ("" for an error that is not an
// unreachable, such as time exceeded).
type icmpWords struct{ message, mark string }

type icmpKind struct {
	v6        bool
	typ, code uint8
}

// icmpTable covers the errors routers in the lab send (RFC 792, RFC 4443),
// worded as iputils does.
var icmpTable = map[icmpKind]icmpWords{
	{false, wire.ICMPv4DestUnreach, wire.ICMPv4NetUnreach}:      {"Destination Net Unreachable", "!N"},
	{false, wire.ICMPv4DestUnreach, wire.ICMPv4HostUnreach}:     {"Destination Host Unreachable", "!H"},
	{false, wire.ICMPv4DestUnreach, wire.ICMPv4ProtoUnreach}:    {"Destination Protocol Unreachable", "!P"},
	{false, wire.ICMPv4DestUnreach, wire.ICMPv4PortUnreach}:     {"Destination Port Unreachable", ""},
	{false, wire.ICMPv4DestUnreach, wire.ICMPv4AdminProhib}:     {"Packet filtered", "!X"},
	{false, wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded}:    {"Time to live exceeded", ""},
	{false, wire.ICMPv4TimeExceeded, wire.ICMPv4ReassemblyTime}: {"Frag reassembly time exceeded", ""},
	{true, wire.ICMPv6DestUnreach, wire.ICMPv6NoRoute}:          {"Destination unreachable: No route", "!N"},
	{true, wire.ICMPv6DestUnreach, wire.ICMPv6AdminProhib}:      {"Destination unreachable: Administratively prohibited", "!X"},
	{true, wire.ICMPv6DestUnreach, wire.ICMPv6AddrUnreach}:      {"Destination unreachable: Address unreachable", "!H"},
	{true, wire.ICMPv6DestUnreach, wire.ICMPv6PortUnreach}:      {"Destination unreachable: Port unreachable", ""},
	{true, wire.ICMPv6TimeExceeded, wire.ICMPv6HopLimitExceed}:  {"Time exceeded: Hop limit", ""},
	{true, wire.ICMPv6TimeExceeded, 1}:                          {"Time exceeded: Defragmentation failure", ""},
}

// words looks an error up; the messages that carry a value (an MTU) or
// name an unknown code are built here.
func words(ev stack.EchoEvent) icmpWords {
	v6 := !ev.From.Is4()
	if w, ok := icmpTable[icmpKind{v6, ev.Type, ev.Code}]; ok {
		return w
	}
	switch {
	case !v6 && ev.Type == wire.ICMPv4DestUnreach && ev.Code == wire.ICMPv4FragNeeded:
		return icmpWords{fmt.Sprintf("Frag needed and DF set (mtu = %d)", ev.MTU), fmt.Sprintf("!F-%d", ev.MTU)}
	case v6 && ev.Type == wire.ICMPv6PacketTooBig:
		return icmpWords{fmt.Sprintf("Packet too big: mtu=%d", ev.MTU), fmt.Sprintf("!F-%d", ev.MTU)}
	case !v6 && ev.Type == wire.ICMPv4DestUnreach:
		return icmpWords{fmt.Sprintf("Dest Unreachable, Bad Code: %d", ev.Code), fmt.Sprintf("!<%d>", ev.Code)}
	case v6 && ev.Type == wire.ICMPv6DestUnreach:
		return icmpWords{fmt.Sprintf("Destination unreachable: Unknown code %d", ev.Code), fmt.Sprintf("!<%d>", ev.Code)}
	case !v6 && ev.Type == wire.ICMPv4TimeExceeded:
		return icmpWords{"Time to live exceeded", ""}
	case !v6 && ev.Type == wire.ICMPv4ParamProblem, v6 && ev.Type == wire.ICMPv6ParamProblem:
		return icmpWords{"Parameter problem", ""}
	case v6:
		return icmpWords{fmt.Sprintf("Unknown ICMPv6 type: %d", ev.Type), ""}
	}
	return icmpWords{fmt.Sprintf("Bad ICMP type: %d", ev.Type), ""}
}

// annotation is traceroute(8)'s mark for an unreachable answer.
func annotation(ev stack.EchoEvent) string {
	if ev.Reply {
		return ""
	}
	return words(ev).mark
}
