package follow

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// controlNode serves Follow from a store on 127.0.0.1 over real gRPC.
type controlNode struct {
	t    testing.TB
	name string
	addr string
	srv  *grpc.Server
	fs   *Server
	done chan struct{}
}

func startControl(t testing.TB, name string, st Source, addr string) *controlNode {
	t.Helper()
	return startService(t, name, addr, func(g *grpc.Server) *Server {
		fs := NewServer(ServerConfig{Node: name, Store: st, IsControl: func() bool { return true }, Heartbeat: 20 * time.Millisecond, Chunk: 1000})
		labv1.RegisterControlServiceServer(g, fs)
		return fs
	})
}

// startService serves what register registers on addr ("127.0.0.1:0" for
// any port; a stopped node's address to bring it back).
func startService(t testing.TB, name, addr string, register func(*grpc.Server) *Server) *controlNode {
	t.Helper()
	var lis net.Listener
	var err error
	for range 100 { // a just-closed port can take a moment to be free again
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	c := &controlNode{t: t, name: name, addr: lis.Addr().String(), srv: grpc.NewServer(), done: make(chan struct{})}
	c.fs = register(c.srv)
	go func() { defer close(c.done); c.srv.Serve(lis) }()
	t.Cleanup(c.stop)
	return c
}

// stop ends the streams and closes the listener and connections, as a
// control node that goes away. Idempotent.
func (c *controlNode) stop() {
	if c.fs != nil {
		c.fs.Stop()
	}
	c.srv.Stop()
	<-c.done
}

func (c *controlNode) candidate() Candidate { return Candidate{Name: c.name, Addr: c.addr} }

// dialer keeps one client connection per address, as the daemon's peer
// connections do, with a short reconnect backoff so tests do not wait on
// gRPC's default of a second.
type dialer struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newDialer(t testing.TB) *dialer {
	d := &dialer{conns: map[string]*grpc.ClientConn{}}
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, c := range d.conns {
			c.Close()
		}
	})
	return d
}

func (d *dialer) dial(_ context.Context, c Candidate) (grpc.ClientConnInterface, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cc := d.conns[c.Addr]; cc != nil {
		return cc, nil
	}
	bo := backoff.DefaultConfig
	bo.BaseDelay, bo.MaxDelay = 10*time.Millisecond, 50*time.Millisecond
	cc, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: time.Second}))
	if err != nil {
		return nil, err
	}
	d.conns[c.Addr] = cc
	return cc, nil
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startFollower runs a follower of rep until the test ends or stop is
// called (which waits for Run to return).
func startFollower(t testing.TB, rep Replica, cands func() []Candidate, d *dialer, opt func(*Config)) (f *Follower, stop func()) {
	t.Helper()
	cfg := Config{
		Node: "member", Replica: func() Replica { return rep }, Candidates: cands, Dial: d.dial,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}
	if opt != nil {
		opt(&cfg)
	}
	f = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return f, stop
}

// waitFor polls cond until it holds; the 20 s limit only stops a test that
// would otherwise hang.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitSame waits until rep holds exactly what src holds.
func waitSame(t testing.TB, src, rep *memStore) {
	t.Helper()
	var want, got string
	deadline := time.Now().Add(20 * time.Second)
	for {
		want, got = src.dump(), rep.dump()
		if want == got {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not converge:\nwant:\n%s\ngot:\n%s", want, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fixed is a candidate list that does not change.
func fixed(list ...Candidate) func() []Candidate {
	return func() []Candidate { return list }
}

// get reads a record under the lock.
func (s *memStore) get(key string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[key]
	return r, ok
}
