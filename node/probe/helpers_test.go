package probe_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/probe"
	"github.com/labnet-dev/labnet/node/runtime"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// lab runs hosts on real stacks joined by a fabric, through the runtime
// (as labd does), in real time.
type lab struct {
	rt *runtime.Runtime
}

// path is the lab the probe tests use, two routers between a and b:
//
//	a ─n1─ r1 ─n2─ r2 ─n3─ b (http, discard)
//	                      └─ c (no routes: answers nobody off n3)
func path() []proto.Message {
	net := func(id, v4, v6 string) *labv1.Network {
		return &labv1.Network{Name: "labs/p/networks/" + id, Ipv4: v4, Ipv6: v6}
	}
	ifc := func(name, net, v4, v6 string) *labv1.Interface {
		return &labv1.Interface{Name: name, Network: net, Ipv4: v4, Ipv6: v6}
	}
	route := func(to, via string) *labv1.Route { return &labv1.Route{To: to, Via: via} }
	host := func(id string, fwd bool, ifcs []*labv1.Interface, routes ...*labv1.Route) *labv1.Host {
		return &labv1.Host{Name: "labs/p/hosts/" + id, Node: "n1", Forwarding: fwd, Interfaces: ifcs, Routes: routes}
	}
	b := host("b", false, []*labv1.Interface{ifc("eth0", "n3", "10.0.3.20/24", "fd00:3::20/64")},
		route("default", "10.0.3.1"), route("default", "fd00:3::1"))
	b.Services = []string{"http", "discard"}
	return []proto.Message{
		net("n1", "10.0.1.0/24", "fd00:1::/64"),
		net("n2", "10.0.2.0/24", "fd00:2::/64"),
		net("n3", "10.0.3.0/24", "fd00:3::/64"),
		host("a", false, []*labv1.Interface{ifc("eth0", "n1", "10.0.1.10/24", "fd00:1::10/64")},
			route("default", "10.0.1.1"), route("default", "fd00:1::1")),
		host("r1", true, []*labv1.Interface{ifc("eth0", "n1", "10.0.1.1/24", "fd00:1::1/64"), ifc("eth1", "n2", "10.0.2.1/24", "fd00:2::1/64")},
			route("10.0.3.0/24", "10.0.2.2"), route("fd00:3::/64", "fd00:2::2")),
		host("r2", true, []*labv1.Interface{ifc("eth0", "n2", "10.0.2.2/24", "fd00:2::2/64"), ifc("eth1", "n3", "10.0.3.1/24", "fd00:3::1/64")},
			route("default", "10.0.2.1"), route("default", "fd00:2::1")),
		b,
		host("c", false, []*labv1.Interface{ifc("eth0", "n3", "10.0.3.30/24", "")}),
	}
}

// newLab runs the path lab until the test ends.
func newLab(t *testing.T) *lab {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rt := runtime.New(runtime.Config{Node: "n1", Store: st, Fabric: fabric.New()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runtime.Run: %v", err)
		}
	})
	msgs := path()
	if _, err := st.Update(func(tx *store.Tx) error {
		for _, m := range msgs {
			b, err := proto.Marshal(m)
			if err != nil {
				return err
			}
			name := m.ProtoReflect().Descriptor().Fields().ByName("name")
			tx.Put(m.ProtoReflect().Get(name).String(), b)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); rt.Count() < 5; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d hosts running after 10s, want 5", rt.Count())
		}
	}
	return &lab{rt: rt}
}

// host is a running host of the lab ("a", "r1" ...).
func (l *lab) host(t *testing.T, id string) probe.Host {
	t.Helper()
	h, ok := l.rt.Host("labs/p/hosts/" + id)
	if !ok {
		t.Fatalf("host %s is not running", id)
	}
	return h.Probe()
}

// collect runs a probe to its end with a time limit.
func collect[E any](t *testing.T, run func(ctx context.Context) func(yield func(E, error) bool)) ([]E, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []E
	for ev, err := range run(ctx) {
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
	if ctx.Err() != nil {
		t.Fatalf("the probe ran past 20s: %v", out)
	}
	return out, nil
}

var (
	addrA  = netip.MustParseAddr("10.0.1.10")
	addrB  = netip.MustParseAddr("10.0.3.20")
	addrB6 = netip.MustParseAddr("fd00:3::20")
	addrC  = netip.MustParseAddr("10.0.3.30")
	addrR1 = netip.MustParseAddr("10.0.1.1")
	addrR2 = netip.MustParseAddr("10.0.2.2")
)
