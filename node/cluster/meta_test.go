package cluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

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
