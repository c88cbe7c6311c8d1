package runtime

import (
	"github.com/labnet-dev/labnet/format/capture"
	"github.com/labnet-dev/labnet/stack"
)

// fromTap makes a capture Packet of a stack tap record seen at iface
// ("host:if"): the daemon's side of captures, so that format/capture, which
// labctl shares, knows nothing of the stack. The record's bytes are shared
// with other taps: the Packet keeps them as they are and must not change
// them.
func fromTap(iface string, r stack.TapRecord) capture.Packet {
	p := capture.Packet{Time: r.Time, Seq: r.Seq, Iface: iface, Data: r.Packet, OrigLen: len(r.Packet), Note: r.Note}
	switch r.Dir {
	case stack.TapIn:
		p.Dir = capture.In
	case stack.TapOut:
		p.Dir = capture.Out
	}
	if r.Drop != stack.DropNone {
		p.Drop = r.Drop.String()
	}
	return p
}
