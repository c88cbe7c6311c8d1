package cluster

import "testing"

func TestLeaveRoundTrip(t *testing.T) {
	name, err := decodeLeave(encodeLeave("node-a"))
	if err != nil || name != "node-a" {
		t.Errorf("decodeLeave = %q, %v", name, err)
	}
	for _, b := range [][]byte{nil, {kindLeave}, {kindLeave, 0}, {kindLeave, 1, 'a', 'b'}, {1, 1, 'a'}} {
		if _, err := decodeLeave(b); err == nil {
			t.Errorf("decodeLeave(%x) succeeded", b)
		}
	}
}

// FuzzDecodeGossip feeds untrusted bytes to the gossip decoders (leave
// announcements, node metadata): they must never panic, and a leave they
// accept must survive a round trip.
func FuzzDecodeGossip(f *testing.F) {
	f.Add(encodeLeave("node-a"))
	f.Add([]byte{kindLeave, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeMeta(b)
		if name, err := decodeLeave(b); err == nil && string(encodeLeave(name)) != string(b) {
			t.Fatalf("decodeLeave(%x) = %q, which encodes differently", b, name)
		}
	})
}
