package follow

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// lockedBuffer is a bytes.Buffer for a logger written from goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestIdleStreamLeft: a stream that brings nothing for IdleTimeout (a
// connection that died with the network sends no reset) is ended and
// followed again, and a change made meanwhile arrives through the new
// stream.
func TestIdleStreamLeft(t *testing.T) {
	src := newMemStore(100)
	src.put("a", "1")
	// Heartbeats far apart, and no changes: the stream goes silent.
	cp := startService(t, "c1", "127.0.0.1:0", func(g *grpc.Server) *Server {
		fs := NewServer(ServerConfig{Node: "c1", Store: src, IsControl: func() bool { return true }, Heartbeat: time.Hour})
		labv1.RegisterControlServiceServer(g, fs)
		return fs
	})
	var logs lockedBuffer
	rep := newMemStore(0)
	startFollower(t, rep, fixed(cp.candidate()), newDialer(t), func(c *Config) {
		c.IdleTimeout = 100 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	waitSame(t, src, rep)
	waitFor(t, "the silent stream left and followed again", func() bool {
		l := logs.String()
		return strings.Contains(l, "nothing heard for 100ms") && strings.Count(l, "following the control plane") >= 2
	})
	src.put("b", "2")
	waitSame(t, src, rep)
}
