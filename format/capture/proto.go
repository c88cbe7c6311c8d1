package capture

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// FromProto converts a packet of the Capture stream.
func FromProto(m *labv1.CapturedPacket) Packet {
	return Packet{
		Time: m.GetTime().AsTime(), Seq: m.GetSeq(), Iface: m.GetInterface(), Dir: Dir(m.GetDirection()),
		Data: m.GetData(), OrigLen: int(m.GetOriginalLength()), Drop: m.GetDrop(), Note: m.GetNote(),
	}
}

// ToProto converts a packet for the Capture stream.
func ToProto(p *Packet) *labv1.CapturedPacket {
	return &labv1.CapturedPacket{
		Interface: p.Iface, Direction: labv1.CaptureDirection(p.Dir), Time: timestamppb.New(p.Time),
		Data: p.Data, OriginalLength: uint32(max(p.OrigLen, len(p.Data))), Drop: p.Drop, Note: p.Note, Seq: p.Seq,
	}
}
