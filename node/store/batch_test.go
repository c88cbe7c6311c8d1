package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var batchCases = []Batch{
	{},
	{Ops: []Op{{Key: "labs/demo", Value: []byte(`{"name":"demo"}`)}}},
	{Ops: []Op{{Key: "k", Value: []byte{}}, {Key: "gone"}}, Conds: []Cond{{Prefix: "", Rev: 0}, {Prefix: "labs/demo/", Rev: 1 << 63}}},
	{Conds: []Cond{{Prefix: "x", Rev: 7}}},
}

func TestBatchRoundTrip(t *testing.T) {
	for _, b := range batchCases {
		got, err := DecodeBatch(EncodeBatch(b))
		if err != nil {
			t.Fatalf("DecodeBatch(EncodeBatch(%+v)): %v", b, err)
		}
		if diff := cmp.Diff(b, got, cmp.Comparer(func(a, b []byte) bool {
			return (a == nil) == (b == nil) && bytes.Equal(a, b)
		})); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

// TestBatchEncoding pins the format: it is in every Raft log.
func TestBatchEncoding(t *testing.T) {
	b := Batch{Ops: []Op{{Key: "k", Value: []byte("hi")}, {Key: "d"}}, Conds: []Cond{{Prefix: "p", Rev: 300}}}
	want := []byte{1, 2, 0, 1, 'k', 2, 'h', 'i', 1, 1, 'd', 1, 1, 'p', 0xac, 0x02}
	if got := EncodeBatch(b); !bytes.Equal(got, want) {
		t.Errorf("EncodeBatch = %v, want %v", got, want)
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	good := EncodeBatch(batchCases[2])
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"empty":        {nil, "truncated"},
		"version":      {[]byte{2, 0, 0}, "version 2"},
		"huge count":   {[]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}, "count"},
		"bad kind":     {[]byte{1, 1, 7, 1, 'k', 0}, "op kind 7"},
		"empty key":    {[]byte{1, 1, 1, 0, 0}, "empty key"},
		"long key":     {[]byte{1, 1, 1, 9, 'k', 0}, "length 9"},
		"long value":   {[]byte{1, 1, 0, 1, 'k', 200, 1, 'v', 0}, "length 200"},
		"bad varint":   {[]byte{1, 0, 1, 1, 'p', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "bad varint"},
		"long varint":  {[]byte{1, 0x80, 0x00, 0}, "shortest form"},
		"trailing":     {append(bytes.Clone(good), 0), "1 bytes after the end"},
		"no conds":     {[]byte{1, 0}, "bad varint"},
		"truncated op": {good[:len(good)/2], ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeBatch(tc.in)
			if !errors.Is(err, errBatch) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeBatch(%v) = %v, want an error saying %q", tc.in, err, tc.want)
			}
		})
	}
}

// FuzzDecodeBatch: hostile bytes never panic, and what decodes encodes
// back to the same bytes.
func FuzzDecodeBatch(f *testing.F) {
	for _, b := range batchCases {
		f.Add(EncodeBatch(b))
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := DecodeBatch(p)
		if err != nil {
			return
		}
		if again := EncodeBatch(b); !bytes.Equal(again, p) {
			t.Fatalf("EncodeBatch(DecodeBatch(%v)) = %v", p, again)
		}
	})
}
