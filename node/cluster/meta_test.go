package cluster

import (
	"strings"
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
	// Meta of a node without the CA fields decodes as before, and the
	// CA fields survive the round trip within memberlist's limit.
	old, err := decodeMeta(append([]byte{metaVersion}, `{"api":"127.0.0.1:7700","role":"control","leader":true,"term":3}`...))
	if err != nil || old.CAHash != "" || old.CAKey || !old.Leader || old.LeaderTerm != 3 {
		t.Errorf("meta without CA fields: %+v %v", old, err)
	}
	full := NodeMeta{APIAddr: "[2001:db8::1234:5678:9abc]:7700", OverlayAddr: "[2001:db8::1234:5678:9abc]:6081", Version: "v0.1.0-dev", Started: 1 << 40,
		Role: RoleControl, RaftAddr: "[2001:db8::1234:5678:9abc]:7701", Leader: true, LeaderTerm: 1 << 40,
		CAHash: "sha256:" + strings.Repeat("ab", 32), CAKey: true}
	if b, err := encodeMeta(full); err != nil {
		t.Errorf("full meta: %v", err)
	} else if got, err := decodeMeta(b); err != nil || got != full {
		t.Errorf("full meta: %+v %v", got, err)
	}
	for _, bad := range [][]byte{{2, '{', '}'}, {metaVersion, '{'}, make([]byte, 600)} {
		if _, err := decodeMeta(bad); err == nil {
			t.Errorf("decodeMeta(%.20x) succeeded", bad)
		}
	}
}
