package api_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// watch opens a Watch that ends with the test (or after 10s).
func (e *env) watch(t *testing.T, req *labv1.WatchRequest) labv1.LabService_WatchClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	stream, err := e.lab.Watch(ctx, req)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	return stream
}

// event is a WatchResponse as "TYPE name", for comparing sequences.
func event(r *labv1.WatchResponse) string {
	return strings.TrimPrefix(r.GetType().String(), "WATCH_EVENT_TYPE_") + " " + r.GetName()
}

// recvN receives n events.
func recvN(t *testing.T, stream labv1.LabService_WatchClient, n int) []*labv1.WatchResponse {
	t.Helper()
	var out []*labv1.WatchResponse
	for range n {
		r, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv after %d events %q: %v", len(out), events(out), err)
		}
		out = append(out, r)
	}
	return out
}

func events(rs []*labv1.WatchResponse) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = event(r)
	}
	return out
}

func wantEvents(t *testing.T, got []*labv1.WatchResponse, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, events(got)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

func TestWatchInitialState(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	stream := e.watch(t, &labv1.WatchRequest{Parent: "labs/demo", Kinds: []string{"hosts", "labs"}})
	got := recvN(t, stream, 5)
	wantEvents(t, got,
		"ADDED labs/demo",
		"ADDED labs/demo/hosts/h1",
		"ADDED labs/demo/hosts/h2",
		"ADDED labs/demo/hosts/r1",
		"SYNCED ")
	rev := e.store.Revision()
	for _, r := range got {
		if r.Revision != rev {
			t.Errorf("%s: revision %d, want %d", event(r), r.Revision, rev)
		}
	}
	lab := got[0].GetLab()
	if lab.GetNetworkCount() != 2 || lab.GetHostCount() != 3 || lab.GetDescription() != "two LANs and a router" {
		t.Errorf("lab = %v, want the demo lab with 2 networks and 3 hosts", lab)
	}
	if h := got[1].GetHost(); !proto.Equal(h, e.host(t, "labs/demo/hosts/h1")) {
		t.Errorf("host = %v, want GetHost's", h)
	}
	if got[4].GetResource() != nil {
		t.Errorf("SYNCED carries a resource: %v", got[4])
	}
}

func TestWatchChanges(t *testing.T) {
	e := newEnv(t, false)
	stream := e.watch(t, &labv1.WatchRequest{})
	first := recvN(t, stream, 1)
	wantEvents(t, first, "SYNCED ")

	e.apply(t, demo())
	added := recvN(t, stream, 6)
	wantEvents(t, added,
		"ADDED labs/demo",
		"ADDED labs/demo/hosts/h1",
		"ADDED labs/demo/hosts/h2",
		"ADDED labs/demo/hosts/r1",
		"ADDED labs/demo/networks/lan1",
		"ADDED labs/demo/networks/lan2")
	for _, r := range added {
		if r.Revision <= first[0].Revision || r.Revision != added[0].Revision {
			t.Errorf("%s: revision %d, want one revision after %d", event(r), r.Revision, first[0].Revision)
		}
	}

	topo := demo()
	topo.Networks[1].Mtu = 9000
	topo.Hosts[1].Routes = topo.Hosts[1].Routes[:1]
	e.apply(t, topo)
	modified := recvN(t, stream, 2)
	wantEvents(t, modified, "MODIFIED labs/demo/hosts/h1", "MODIFIED labs/demo/networks/lan2")
	if modified[0].Revision <= added[0].Revision || modified[1].Revision != modified[0].Revision {
		t.Errorf("revisions %d, %d after %d: want one larger revision", modified[0].Revision, modified[1].Revision, added[0].Revision)
	}
	if got := modified[1].GetNetwork().GetMtu(); got != 9000 {
		t.Errorf("modified lan2 MTU = %d, want 9000", got)
	}

	if _, err := e.lab.DeleteHost(t.Context(), &labv1.DeleteHostRequest{Name: "labs/demo/hosts/h2"}); err != nil {
		t.Fatalf("DeleteHost: %v", err)
	}
	deleted := recvN(t, stream, 2)
	// The lab's host count changed too.
	wantEvents(t, deleted, "MODIFIED labs/demo", "DELETED labs/demo/hosts/h2")
	if deleted[0].GetLab().GetHostCount() != 2 {
		t.Errorf("lab after delete = %v, want 2 hosts", deleted[0].GetLab())
	}
	if deleted[1].Revision <= modified[0].Revision || deleted[1].Revision != e.store.Revision() {
		t.Errorf("DELETED revision %d, want the store's %d", deleted[1].Revision, e.store.Revision())
	}
}

func TestWatchOneLabIgnoresOthers(t *testing.T) {
	e := newEnv(t, false)
	stream := e.watch(t, &labv1.WatchRequest{Parent: "labs/demo", Kinds: []string{"networks"}})
	wantEvents(t, recvN(t, stream, 1), "SYNCED ")

	// "demo2" shares demo's key prefix: it must not leak into the watch.
	for _, name := range []string{"other", "demo2"} {
		topo := demo()
		topo.Lab = name
		e.apply(t, topo)
	}
	e.apply(t, demo())
	wantEvents(t, recvN(t, stream, 2), "ADDED labs/demo/networks/lan1", "ADDED labs/demo/networks/lan2")
}

func TestWatchBadRequest(t *testing.T) {
	e := newEnv(t, false)
	for _, tc := range []struct {
		req   *labv1.WatchRequest
		field string
	}{
		{&labv1.WatchRequest{Parent: "demo"}, "parent"},
		{&labv1.WatchRequest{Parent: "labs/demo/hosts/h1"}, "parent"},
		{&labv1.WatchRequest{Kinds: []string{"hosts", "pods"}}, "kinds[1]"},
	} {
		t.Run(fmt.Sprint(tc.req), func(t *testing.T) {
			_, err := e.watch(t, tc.req).Recv()
			wantField(t, err, tc.field)
		})
	}
}

func TestWatchCancel(t *testing.T) {
	e := newEnv(t, false)
	// Connect first, so that the connection's goroutines are in the baseline.
	if _, err := e.lab.ListLabs(t.Context(), &labv1.ListLabsRequest{}); err != nil {
		t.Fatalf("ListLabs: %v", err)
	}
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := e.lab.Watch(ctx, &labv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, recvN(t, stream, 1), "SYNCED ")
	cancel()
	if _, err := stream.Recv(); err == nil {
		t.Fatal("Recv after cancel: no error")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want %d after the watch ended:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The store still works and has no subscriber stuck on it.
	e.apply(t, demo())
}

func TestWatchServerStop(t *testing.T) {
	e := newEnv(t, false)
	stream := e.watch(t, &labv1.WatchRequest{})
	wantEvents(t, recvN(t, stream, 1), "SYNCED ")
	e.srv.Stop()
	_, err := stream.Recv()
	wantCode(t, err, codes.Unavailable)
}
