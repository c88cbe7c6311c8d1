package capture

import "github.com/labnet-dev/labnet/stack"

// FromTap makes a Packet of a stack tap record seen at iface ("host:if").
// The record's bytes are shared with other taps: the Packet keeps them
// as they are and must not change them.
func FromTap(iface string, r stack.TapRecord) Packet {
	p := Packet{Time: r.Time, Seq: r.Seq, Iface: iface, Data: r.Packet, OrigLen: len(r.Packet), Note: r.Note}
	switch r.Dir {
	case stack.TapIn:
		p.Dir = In
	case stack.TapOut:
		p.Dir = Out
	}
	if r.Drop != stack.DropNone {
		p.Drop = r.Drop.String()
	}
	return p
}
