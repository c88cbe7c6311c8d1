package cluster

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/node/store"
)

var testRecords = []store.Record{
	{Key: "labs/demo", Value: []byte(`{"name":"demo"}`), Stamp: store.Stamp{Time: 0x0192_0000_0001_0002, Origin: "node-a"}},
	{Key: "labs/demo/hosts/h1", Value: []byte{}, Stamp: store.Stamp{Time: 1, Origin: "b"}},
	{Key: "labs/old", Deleted: true, Stamp: store.Stamp{Time: 1 << 63, Origin: "node-c"}},
}

func TestCodecBytes(t *testing.T) {
	// Encode what was decoded and decode what was encoded, from a literal.
	lit := []byte{
		kindRecords, 2,
		1, 'k', 0, 0, 0, 0, 0, 0, 1, 0, 1, 'n', 0, 2, 'h', 'i',
		1, 'd', 0, 0, 0, 0, 0, 0, 0, 7, 1, 'm', flagDeleted, 0,
	}
	want := []store.Record{
		{Key: "k", Value: []byte("hi"), Stamp: store.Stamp{Time: 256, Origin: "n"}},
		{Key: "d", Deleted: true, Stamp: store.Stamp{Time: 7, Origin: "m"}},
	}
	kind, got, err := decodeMessage(lit)
	if err != nil || kind != kindRecords {
		t.Fatalf("decode: kind %d, %v", kind, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decode (-want +got):\n%s", diff)
	}
	if enc := encodeMessage(kindRecords, want); !bytes.Equal(enc, lit) {
		t.Errorf("encode:\n got %x\nwant %x", enc, lit)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, kind := range []byte{kindRecords, kindState} {
		for _, recs := range [][]store.Record{nil, testRecords[:1], testRecords} {
			b := encodeMessage(kind, recs)
			gotKind, got, err := decodeMessage(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if gotKind != kind {
				t.Errorf("kind %d, want %d", gotKind, kind)
			}
			if diff := cmp.Diff(recs, got, cmp.Comparer(func(a, b []store.Record) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if len(b) != 1+uvarintLen(len(recs))+sumLen(recs) {
				t.Errorf("recordLen disagrees with the encoding")
			}
		}
	}
}

func sumLen(recs []store.Record) int {
	n := 0
	for _, r := range recs {
		n += recordLen(r)
	}
	return n
}

func TestDecodeRejects(t *testing.T) {
	good := encodeMessage(kindRecords, testRecords[:1])
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"unknown kind", []byte{9, 0}, ErrMalformed},
		{"no count", []byte{kindRecords}, ErrTruncated},
		{"count too large", []byte{kindRecords, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrTruncated},
		{"varint overflow", []byte{kindRecords, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrMalformed},
		{"truncated record", good[:len(good)-1], ErrTruncated},
		{"trailing bytes", append(bytes.Clone(good), 0), ErrMalformed},
		{"empty key", []byte{kindRecords, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'n', 0, 0}, ErrMalformed},
		{"empty origin", []byte{kindRecords, 1, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, ErrMalformed},
		{"unknown flag", []byte{kindRecords, 1, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 1, 1, 'n', 2, 0}, ErrMalformed},
		{"tombstone with value", []byte{kindRecords, 1, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 1, 1, 'n', 1, 1, 'v'}, ErrMalformed},
		{"key over limit", append([]byte{kindRecords, 1, 0x81, 0x10}, make([]byte, 2000)...), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeMessage(tc.b)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLeaveRoundTrip(t *testing.T) {
	name, err := decodeLeave(encodeLeave("node-a"))
	if err != nil || name != "node-a" {
		t.Errorf("decodeLeave = %q, %v", name, err)
	}
	for _, b := range [][]byte{nil, {kindLeave}, {kindLeave, 0}, {kindLeave, 1, 'a', 'b'}, {kindRecords, 1, 'a'}} {
		if _, err := decodeLeave(b); err == nil {
			t.Errorf("decodeLeave(%x) succeeded", b)
		}
	}
}

func TestMetaRoundTrip(t *testing.T) {
	m := NodeMeta{APIAddr: "127.0.0.1:7700", OverlayAddr: "127.0.0.1:6081", Version: "v0.1.0"}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range [][]byte{{2, '{', '}'}, {metaVersion, '{'}, make([]byte, 600)} {
		if _, err := decodeMeta(bad); err == nil {
			t.Errorf("decodeMeta(%.20x) succeeded", bad)
		}
	}
}

// FuzzDecodeMessage feeds untrusted bytes to the gossip decoders: they must
// never panic, and what they accept must survive a round trip.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeMessage(kindRecords, testRecords))
	f.Add(encodeMessage(kindState, testRecords[:2]))
	f.Add(encodeMessage(kindState, nil))
	f.Add(encodeLeave("node-a"))
	f.Add([]byte{kindRecords, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeLeave(b)
		decodeMeta(b)
		kind, recs, err := decodeMessage(b)
		if err != nil {
			return
		}
		for _, r := range recs {
			if err := checkRecord(r); err != nil {
				t.Fatalf("decoded a record over the limits: %v", err)
			}
			if r.Deleted != (r.Value == nil) {
				t.Fatalf("record %q: deleted %v with value %v", r.Key, r.Deleted, r.Value)
			}
		}
		kind2, recs2, err := decodeMessage(encodeMessage(kind, recs))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if kind2 != kind || !cmp.Equal(recs, recs2) {
			t.Fatalf("round trip changed the message")
		}
	})
}
