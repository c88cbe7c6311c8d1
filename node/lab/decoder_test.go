package lab

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestDecoder reads a store again and again as it changes: it returns what
// ReadAll returns, the same records (by pointer) for unchanged bytes and
// new ones for changed bytes, and forgets deleted records.
func TestDecoder(t *testing.T) {
	s := openStore(t)
	update(t, s, func(tx *store.Tx) error {
		for _, h := range []*labv1.Host{host("a", "h1", "n1", "lan"), host("a", "h2", "n1", "lan"), host("a", "h3", "n2", "lan")} {
			if err := PutHost(tx, h); err != nil {
				return err
			}
		}
		return PutNetwork(tx, &labv1.Network{Name: NetworkName("a", "lan"), Vni: 1})
	})
	var d Decoder
	check := func(all All, err error) map[string]proto.Message {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ReadAll(s) // a bad record is left out by both
		if len(all.Hosts) != len(want.Hosts) || len(all.Networks) != len(want.Networks) {
			t.Fatalf("Decoder read %d hosts, %d networks; ReadAll %d, %d", len(all.Hosts), len(all.Networks), len(want.Hosts), len(want.Networks))
		}
		got := map[string]proto.Message{}
		for i, h := range all.Hosts {
			if !proto.Equal(h, want.Hosts[i]) {
				t.Errorf("host %d: %v, ReadAll %v", i, h, want.Hosts[i])
			}
			got[h.Name] = h
		}
		for k, n := range all.Networks {
			if !proto.Equal(n, want.Networks[k]) {
				t.Errorf("network %s: %v, ReadAll %v", k, n, want.Networks[k])
			}
			got[k] = n
		}
		return got
	}
	first := check(d.ReadAll(s))

	// h2 changes, h3 goes, h4 comes, a bad record is reported and left out.
	update(t, s, func(tx *store.Tx) error {
		if err := PutHost(tx, host("a", "h2", "n2", "lan")); err != nil {
			return err
		}
		if err := PutHost(tx, host("a", "h4", "n1", "lan")); err != nil {
			return err
		}
		tx.Put(HostName("a", "bad"), []byte{0xff})
		return Delete(tx, HostName("a", "h3"))
	})
	all, err := d.ReadAll(s)
	if err == nil {
		t.Error("a bad record was not reported")
	}
	second := check(all, nil)
	for name, same := range map[string]bool{HostName("a", "h1"): true, NetworkName("a", "lan"): true, HostName("a", "h2"): false} {
		if (first[name] == second[name]) != same {
			t.Errorf("%s: same record as before = %v, want %v", name, first[name] == second[name], same)
		}
	}
	if second[HostName("a", "h3")] != nil || second[HostName("a", "h4")] == nil {
		t.Errorf("read %v", second)
	}
	if len(d.recs) != 4 {
		t.Errorf("the decoder keeps %d records, want 4 (h1 h2 h4 lan)", len(d.recs))
	}
}
