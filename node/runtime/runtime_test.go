package runtime

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func put(t *testing.T, st *store.Store, msgs ...proto.Message) {
	t.Helper()
	_, err := st.Update(func(tx *store.Tx) error {
		for _, m := range msgs {
			b, _ := proto.Marshal(m)
			name := m.ProtoReflect().Descriptor().Fields().ByName("name")
			tx.Put(m.ProtoReflect().Get(name).String(), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestReconcile(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt := New(Config{Node: "n1", Store: st, Fabric: fabric.New()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- rt.Run(ctx) }()

	lan := &labv1.Network{Name: "labs/l/networks/lan", Ipv4: "10.0.0.0/24"}
	a := &labv1.Host{Name: "labs/l/hosts/a", Node: "n1", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: "10.0.0.1/24"}}}
	b := &labv1.Host{Name: "labs/l/hosts/b", Node: "n1", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: "10.0.0.2/24"}}}
	other := &labv1.Host{Name: "labs/l/hosts/c", Node: "n2", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: "10.0.0.3/24"}}}
	put(t, st, lan, a, b, other)
	waitFor(t, "a and b running", func() bool { return rt.Count() == 2 })
	if _, ok := rt.Host(other.Name); ok {
		t.Fatal("a host placed on another node runs here")
	}

	// a pings b through the fabric and the hosts' receive loops.
	ha, _ := rt.Host(a.Name)
	ep, err := ha.Stack().OpenEcho(false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Send(netip.MustParseAddr("10.0.0.2"), 1, 0, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ep.Events():
		if !ev.Reply || ev.From != netip.MustParseAddr("10.0.0.2") {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no echo reply")
	}
	ep.Close()

	// Changing b's address restarts b, and only b.
	b2 := proto.Clone(b).(*labv1.Host)
	b2.Interfaces[0].Ipv4 = "10.0.0.20/24"
	put(t, st, b2)
	waitFor(t, "b restarted", func() bool {
		h, ok := rt.Host(b.Name)
		return ok && h.Stack().Interfaces()[0].Addresses()[0].String() == "10.0.0.20/24"
	})
	if h, _ := rt.Host(a.Name); h != ha {
		t.Error("a was restarted by a change to b")
	}

	// Deleting a stops it.
	if _, err := st.Update(func(tx *store.Tx) error { tx.Delete(a.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a stopped", func() bool { _, ok := rt.Host(a.Name); return !ok })

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rt.Count() != 0 {
		t.Errorf("%d hosts left after Run returned", rt.Count())
	}
}

func TestImpairmentsWithoutRestart(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt := New(Config{Node: "n1", Store: st, Fabric: fabric.New()})
	lan := &labv1.Network{Name: "labs/l/networks/lan", Ipv4: "10.0.0.0/24"}
	loss := &labv1.Impairment{LossPercent: 100}
	a := &labv1.Host{Name: "labs/l/hosts/a", Node: "n1", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: "10.0.0.1/24", Impair: loss}}}
	b := &labv1.Host{Name: "labs/l/hosts/b", Node: "n1", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: "10.0.0.2/24"}}}
	put(t, st, lan, a, b)
	rt.Reconcile()
	ha, ok := rt.Host(a.Name)
	if !ok {
		t.Fatal("a is not running")
	}
	if !proto.Equal(ha.Impairment("eth0"), loss) {
		t.Fatalf("impairment at start = %v, want %v", ha.Impairment("eth0"), loss)
	}

	// 100% loss: a's echo request never reaches b.
	ep, err := ha.Stack().OpenEcho(false)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if _, err := ep.Send(netip.MustParseAddr("10.0.0.2"), 1, 0, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if c := ha.ImpairCounters("eth0"); c.Dropped != 1 {
		t.Errorf("counters %+v, want Dropped=1", c)
	}

	// A change of impairments only is applied to the running host.
	a2 := proto.CloneOf(a)
	a2.Interfaces[0].Impair = &labv1.Impairment{Delay: durationpb.New(time.Millisecond)}
	put(t, st, a2)
	rt.Reconcile()
	if h, _ := rt.Host(a.Name); h != ha {
		t.Fatal("an impairment change restarted the host")
	}
	if !proto.Equal(ha.Impairment("eth0"), a2.Interfaces[0].Impair) {
		t.Errorf("impairment = %v, want %v", ha.Impairment("eth0"), a2.Interfaces[0].Impair)
	}
	if _, err := ep.Send(netip.MustParseAddr("10.0.0.2"), 2, 0, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if c := ha.ImpairCounters("eth0"); c.Dropped != 1 || c.Delayed != 1 {
		t.Errorf("counters %+v, want Dropped=1 Delayed=1 (kept across the change)", c)
	}
	if c := ha.ImpairCounters("eth9"); c != (fabric.ImpairCounters{}) {
		t.Errorf("counters of a missing interface: %+v", c)
	}

	// Cleared, then a real change: that restarts.
	a3 := proto.CloneOf(a)
	a3.Interfaces[0].Impair = nil
	put(t, st, a3)
	rt.Reconcile()
	if h, _ := rt.Host(a.Name); h != ha || ha.Impairment("eth0") != nil {
		t.Fatalf("clearing: host %p (was %p), impairment %v", h, ha, ha.Impairment("eth0"))
	}
	a3.Interfaces[0].Ipv4 = "10.0.0.3/24"
	put(t, st, a3)
	rt.Reconcile()
	if h, _ := rt.Host(a.Name); h == ha {
		t.Error("an address change did not restart the host")
	}
	rt.stopAll()
}

// TestHostBeforeItsNetwork: a host whose record arrives before its
// network's (replication order) waits, without an error, and starts when
// the network comes.
func TestHostBeforeItsNetwork(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	rt := New(Config{Node: "n1", Store: st, Fabric: fabric.New(), Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rt.Run(ctx)

	a := &labv1.Host{Name: "labs/l/hosts/a", Node: "n1", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: "10.0.0.1/24"}}}
	put(t, st, a)
	time.Sleep(50 * time.Millisecond)
	if rt.Count() != 0 {
		t.Fatal("a host without its network runs")
	}
	put(t, st, &labv1.Network{Name: "labs/l/networks/lan", Ipv4: "10.0.0.0/24"})
	waitFor(t, "a running", func() bool { return rt.Count() == 1 })
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged while the host waited for its network:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
