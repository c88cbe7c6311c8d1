package runtime

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// An idle host owns no goroutine: the stack's receive worker runs only
// while packets wait, so hosts that were pinged leave none behind.
func TestIdleHostsOwnNoGoroutine(t *testing.T) {
	const hosts = 40
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt := New(Config{Node: "n1", Store: st, Fabric: fabric.New()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- rt.Run(ctx) }()

	host := func(i int) *labv1.Host {
		return &labv1.Host{Name: fmt.Sprintf("labs/l/hosts/h%d", i), Node: "n1", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: fmt.Sprintf("10.0.0.%d/24", i+1)}}}
	}
	put(t, st, &labv1.Network{Name: "labs/l/networks/lan", Ipv4: "10.0.0.0/24"}, host(0))
	waitFor(t, "one host running", func() bool { return rt.Count() == 1 })
	before := goruntime.NumGoroutine()

	var msgs []proto.Message
	for i := 1; i < hosts; i++ {
		msgs = append(msgs, host(i))
	}
	put(t, st, msgs...)
	waitFor(t, "all hosts running", func() bool { return rt.Count() == hosts })

	// Host 0 pings every other host: each of them receives, answers and
	// goes idle again.
	h0, _ := rt.Host("labs/l/hosts/h0")
	ep, err := h0.Stack().OpenEcho(false)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	for i := 1; i < hosts; i++ {
		if _, err := ep.Send(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), uint16(i), 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < hosts; i++ {
		select {
		case ev := <-ep.Events():
			if !ev.Reply {
				t.Fatalf("event %+v, want a reply", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d replies, want %d", i-1, hosts-1)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for goruntime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines with %d idle hosts, %d with one:\n%s", goruntime.NumGoroutine(), hosts, before, buf[:goruntime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
