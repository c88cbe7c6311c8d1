package lab

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func update(t *testing.T, s *store.Store, fn func(tx *store.Tx) error) {
	t.Helper()
	if _, err := s.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func host(lab, id, node string, nets ...string) *labv1.Host {
	h := &labv1.Host{Name: HostName(lab, id), Node: node}
	for _, n := range nets {
		h.Interfaces = append(h.Interfaces, &labv1.Interface{Name: "eth0", Network: n})
	}
	return h
}

func TestStateWriteLoad(t *testing.T) {
	s := openStore(t)
	next := NewState("demo")
	next.Lab = &labv1.Lab{Name: LabName("demo"), Description: "d"}
	next.Networks["lan"] = &labv1.Network{Name: NetworkName("demo", "lan"), Ipv4: "10.0.0.0/24", Vni: 7}
	next.Hosts["h1"] = host("demo", "h1", "n1", "lan")
	// A lab whose id extends demo's must not leak into it.
	other := NewState("demo2")
	other.Lab = &labv1.Lab{Name: LabName("demo2")}
	other.Hosts["x"] = host("demo2", "x", "n2")
	update(t, s, func(tx *store.Tx) error {
		if err := Write(tx, NewState("demo"), next); err != nil {
			return err
		}
		return Write(tx, NewState("demo2"), other)
	})

	got, err := Load(s, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(next, got, protocmp.Transform()); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	all, err := LoadAll(s)
	if err != nil || len(all) != 2 || all[0].ID != "demo" || all[1].ID != "demo2" {
		t.Fatalf("LoadAll = %v, %v", all, err)
	}

	// Write stores only differences: deleting h1 and the lab record.
	after := got.Clone()
	delete(after.Hosts, "h1")
	after.Lab = nil
	b, err := s.Read(func(tx *store.Tx) error { return Write(tx, got, after) })
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, op := range b.Ops {
		keys = append(keys, op.Key)
	}
	if _, err := s.Apply(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"labs/demo", "labs/demo/hosts/h1"}, keys); diff != "" {
		t.Errorf("changed keys (-want +got):\n%s", diff)
	}
	if _, ok, _ := GetHost(s, "demo", "h1"); ok {
		t.Error("h1 still stored")
	}
	if n, ok, err := GetNetwork(s, "demo", "lan"); !ok || err != nil || n.Vni != 7 {
		t.Errorf("GetNetwork = %v, %v, %v", n, ok, err)
	}
	if got.Hosts["h1"] == nil {
		t.Error("Clone shares maps with its source")
	}
}

func TestRecords(t *testing.T) {
	s := openStore(t)
	update(t, s, func(tx *store.Tx) error {
		for _, err := range []error{
			PutLab(tx, &labv1.Lab{Name: LabName("a")}),
			PutNetwork(tx, &labv1.Network{Name: NetworkName("a", "lan"), Vni: 1}),
			PutNetwork(tx, &labv1.Network{Name: NetworkName("b", "lan"), Vni: 2}),
			PutHost(tx, host("a", "h2", "n2", "lan")),
			PutHost(tx, host("a", "h1", "n1", "lan")),
			PutHost(tx, host("b", "h1", "n1", "lan")),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	all, err := ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range all.Hosts {
		names = append(names, h.Name)
	}
	if diff := cmp.Diff([]string{"labs/a/hosts/h1", "labs/a/hosts/h2", "labs/b/hosts/h1"}, names); diff != "" {
		t.Errorf("ReadAll hosts (-want +got):\n%s", diff)
	}
	if n := all.Network(all.Hosts[2], "lan"); n.GetVni() != 2 {
		t.Errorf("network lan of lab b: %v", n)
	}
	if n := all.Network(all.Hosts[0], "wan"); n != nil {
		t.Errorf("a network not stored: %v", n)
	}
	if diff := cmp.Diff(map[string]int{"n1": 2, "n2": 1}, HostsPerNode(all.Hosts)); diff != "" {
		t.Errorf("HostsPerNode (-want +got):\n%s", diff)
	}
	if hs, err := ListHosts(s, "a"); err != nil || len(hs) != 2 {
		t.Errorf("ListHosts(a) = %d, %v", len(hs), err)
	}
	if ns, err := ListNetworks(s, ""); err != nil || len(ns) != 2 {
		t.Errorf("ListNetworks(all) = %d, %v", len(ns), err)
	}
	recs, rev := Snapshot(s, "b")
	if len(recs) != 2 || rev == 0 || recs[0].Key.Kind != KindHost || recs[1].Key.Kind != KindNetwork {
		t.Errorf("Snapshot(b) = %+v at %d", recs, rev)
	}
	if used := UsedVNIs(s); !used[1] || !used[2] || len(used) != 2 {
		t.Errorf("UsedVNIs = %v", used)
	}
	update(t, s, func(tx *store.Tx) error { return Delete(tx, HostName("b", "h1")) })
	if _, ok, _ := GetHost(s, "b", "h1"); ok {
		t.Error("Delete left the host")
	}

	// Bad names and bad records are errors, not panics.
	_, err = s.Update(func(tx *store.Tx) error { return PutHost(tx, &labv1.Host{Name: "h1"}) })
	if err == nil {
		t.Error("PutHost accepted a host without a resource name")
	}
	_, err = s.Update(func(tx *store.Tx) error { return Delete(tx, "other/key") })
	if err == nil {
		t.Error("Delete accepted a key outside the layout")
	}
	update(t, s, func(tx *store.Tx) error { tx.Put(HostName("a", "bad"), []byte{0xff}); return nil })
	all, err = ReadAll(s)
	if err == nil || len(all.Hosts) != 2 {
		t.Errorf("ReadAll with a bad record = %d hosts, %v", len(all.Hosts), err)
	}
	if _, err := Load(s, "a"); err == nil {
		t.Error("Load decoded a bad record")
	}
}

func TestPlacer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []string
		load  map[string]int
		want  []string
	}{
		{"ties go first by name", []string{"c", "a", "b"}, nil, []string{"a", "b", "c", "a"}},
		{"least loaded first", []string{"a", "b"}, map[string]int{"a": 2}, []string{"b", "b", "a", "b"}},
		{"load of other nodes ignored", []string{"b"}, map[string]int{"a": 0, "b": 5}, []string{"b"}},
		{"no nodes", nil, nil, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPlacer(tc.nodes, tc.load)
			var got []string
			for range tc.want {
				got = append(got, p.Place())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestVNIs(t *testing.T) {
	used := VNIs{}
	a := used.Assign("labs/l/networks/a")
	if a == 0 || a > 0xffffff {
		t.Fatalf("VNI %d out of range", a)
	}
	if again := (VNIs{}).Assign("labs/l/networks/a"); again != a {
		t.Errorf("VNI of the same name differs: %d, %d", a, again)
	}
	// The same name, with its VNI taken, probes past it.
	if b := used.Assign("labs/l/networks/a"); b == a || !used[b] {
		t.Errorf("second VNI %d (first %d)", b, a)
	}
}

func TestValidate(t *testing.T) {
	st := NewState("demo")
	st.Networks["lan"] = &labv1.Network{Name: NetworkName("demo", "lan"), Ipv4: "10.0.0.0/24"}
	st.Networks["bad"] = &labv1.Network{Name: NetworkName("demo", "bad"), Ipv4: "10.0.0.1/24"}
	h := host("demo", "h1", "n1", "lan")
	h.Interfaces[0].Ipv4 = "10.0.0.255/24"
	h.Interfaces[0].Impair = &labv1.Impairment{LossPercent: 101, Delay: durationpb.New(-1)}
	h.Routes = []*labv1.Route{{To: "default", Via: "10.9.9.9"}}
	st.Hosts["h1"] = h
	field := func(name string) string {
		if name == HostName("demo", "h1") {
			return "topology.hosts[0]"
		}
		return name
	}
	err := Validate(st, field, []string{HostName("demo", "h1")}).Err()
	var v Violations
	if !errors.As(err, &v) {
		t.Fatalf("Validate = %v, want Violations", err)
	}
	var fields []string
	for _, f := range v {
		fields = append(fields, f.Field)
	}
	want := []string{
		"labs/demo/networks/bad.ipv4",
		"topology.hosts[0].interfaces[0].impair.loss_percent",
		"topology.hosts[0].interfaces[0].impair.delay",
		"topology.hosts[0].interfaces[0].ipv4",
		"topology.hosts[0].routes[0].via",
	}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if got := err.Error(); got != v[0].Field+": "+v[0].Description+" (and 4 more)" {
		t.Errorf("Error() = %q", got)
	}
	if err := Validate(NewState("x"), field, nil).Err(); err != nil {
		t.Errorf("an empty lab: %v", err)
	}
}

func TestNormalize(t *testing.T) {
	st := NewState("demo")
	st.Networks["lan"] = &labv1.Network{Name: NetworkName("demo", "lan"), Ipv4: "10.0.1.0/24", Ipv6: "fd00:0:0:1::/64"}
	a := host("demo", "a", "n1", "lan")
	a.Interfaces[0].Ipv4 = "10.0.1.1" // bare: gets the prefix length
	b := host("demo", "b", "n1", "lan")
	b.Interfaces[0].Name = ""
	st.Hosts["a"], st.Hosts["b"] = a, b
	old := NewState("demo")
	Normalize(st, old, []string{"a", "b"})
	if got := a.Interfaces[0]; got.Ipv4 != "10.0.1.1/24" || got.Ipv6 != "fd00:0:0:1::1/64" {
		t.Errorf("a: %v", got)
	}
	// b gets the lowest free address (not the network address, not a's)
	// and the IPv6 address with the same digits.
	if got := b.Interfaces[0]; got.Name != "eth0" || got.Ipv4 != "10.0.1.2/24" || got.Ipv6 != "fd00:0:0:1::2/64" {
		t.Errorf("b: %v", got)
	}
	// Applied again with b's address given up, b keeps what it had.
	next := st.Clone()
	next.Hosts["b"].Interfaces[0].Ipv4, next.Hosts["b"].Interfaces[0].Ipv6 = "", ""
	next.Hosts["c"] = host("demo", "c", "n1", "lan")
	next.Hosts["c"].Interfaces[0].Ipv4 = "10.0.1.3/24"
	Normalize(next, st, []string{"b"})
	if got := next.Hosts["b"].Interfaces[0]; !proto.Equal(got, b.Interfaces[0]) {
		t.Errorf("b re-addressed: %v, was %v", got, b.Interfaces[0])
	}
}

func TestCanonImpairment(t *testing.T) {
	if got := CanonImpairment(&labv1.Impairment{Delay: durationpb.New(0)}); got != nil {
		t.Errorf("zero impairment kept: %v", got)
	}
	im := CanonImpairment(&labv1.Impairment{LossPercent: 1, Jitter: durationpb.New(0)})
	if im == nil || im.Jitter != nil || im.LossPercent != 1 {
		t.Errorf("CanonImpairment = %v", im)
	}
}

// TestNormalizeFillsGaps assigns many interfaces of two networks in one
// call: each gets the lowest address free at its turn, skipping explicit
// ones, the network's reserved ones and those an IPv6 hint took.
func TestNormalizeFillsGaps(t *testing.T) {
	st := NewState("demo")
	st.Networks["a"] = &labv1.Network{Name: NetworkName("demo", "a"), Ipv4: "10.0.1.0/29"}
	st.Networks["b"] = &labv1.Network{Name: NetworkName("demo", "b"), Ipv4: "10.0.2.0/24"}
	explicit := map[string]string{"x": "10.0.1.2/29", "y": "10.0.1.5/29"}
	for id, addr := range explicit {
		h := host("demo", id, "n1", "a")
		h.Interfaces[0].Ipv4 = addr
		st.Hosts[id] = h
	}
	var ids []string
	for i := range 8 {
		id := fmt.Sprintf("h%d", i)
		st.Hosts[id] = host("demo", id, "n1", "a", "b")
		ids = append(ids, id)
	}
	Normalize(st, NewState("demo"), ids)
	// 10.0.1.0/29: .0 is the network's, .7 its broadcast, .2 and .5 are
	// given: .1 .3 .4 .6, then the subnet is full (validation reports it).
	wantA := []string{"10.0.1.1/29", "10.0.1.3/29", "10.0.1.4/29", "10.0.1.6/29", "", "", "", ""}
	for i, id := range ids {
		ifcs := st.Hosts[id].Interfaces
		if ifcs[0].Ipv4 != wantA[i] {
			t.Errorf("%s on a: %q, want %q", id, ifcs[0].Ipv4, wantA[i])
		}
		if want := fmt.Sprintf("10.0.2.%d/24", i+1); ifcs[1].Ipv4 != want {
			t.Errorf("%s on b: %q, want %q", id, ifcs[1].Ipv4, want)
		}
	}
}

// TestLazyPlacer: a LazyPlacer makes its placer on the first Place only,
// and then places as that placer does.
func TestLazyPlacer(t *testing.T) {
	made := 0
	p := LazyPlacer(func() *Placer {
		made++
		return NewPlacer([]string{"n2", "n1"}, map[string]int{"n1": 1})
	})
	if made != 0 {
		t.Fatalf("made %d placers before any Place", made)
	}
	var got []string
	for range 3 {
		got = append(got, p.Place())
	}
	if made != 1 {
		t.Errorf("made %d placers, want 1", made)
	}
	if diff := cmp.Diff([]string{"n2", "n1", "n2"}, got); diff != "" {
		t.Errorf("placed (-want +got):\n%s", diff)
	}
}
