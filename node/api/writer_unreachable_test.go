package api_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// controlsWriter refuses every write as a node that knows the control
// nodes does (node/control's NotLeaderError).
type controlsWriter struct {
	leader   string
	controls []string
}

type controlsErr controlsWriter

func (e controlsErr) Error() string          { return "not the leader" }
func (e controlsErr) NotLeader() string      { return e.leader }
func (e controlsErr) ControlNodes() []string { return e.controls }
func (w controlsWriter) Update(context.Context, func(*store.Tx) error) (uint64, error) {
	return 0, controlsErr(w)
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestWriteOfferedToOtherControlNodes: when the leader named here cannot be
// dialled (gossip still names a killed leader), the write goes to the
// other control nodes in turn; when none takes it, the one-line error
// names every control node and what each said.
func TestWriteOfferedToOtherControlNodes(t *testing.T) {
	leader := newEnv(t, false)
	noLeader := newEnv(t, false, func(c *api.Config) { c.Writer = controlsWriter{"", []string{"c1", "c2", "c3"}} })
	dead := closedAddr(t)
	addrs := map[string]string{"c1": dead, "c2": noLeader.addr, "c3": leader.addr}
	peer := func(node string) (grpc.ClientConnInterface, error) {
		return grpc.NewClient(addrs[node], grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	member := newEnv(t, false, func(c *api.Config) {
		c.Writer = controlsWriter{"c1", []string{"c1", "c2", "c3"}}
		c.Peer = peer
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := member.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "one", Lab: &labv1.Lab{}}); err != nil {
		t.Fatalf("write with the named leader dead and c3 leading: %v", err)
	}

	addrs["c3"] = dead
	_, err := member.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "two", Lab: &labv1.Lab{}})
	msg := wantCode(t, err, codes.Unavailable).Message()
	for _, want := range []string{"control nodes c1, c2, c3: a majority of them must be up", "c1: cannot be reached", "c2: no leader", "c3: cannot be reached"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in %q", want, msg)
		}
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, "rpc error") {
		t.Errorf("not one plain line: %q", msg)
	}
}

// outcomeWriter fails as a leader that lost its majority after proposing.
type outcomeWriter struct{}

type outcomeErr struct{}

func (outcomeErr) Error() string        { return "control: leadership lost while committing" }
func (outcomeErr) OutcomeUnknown() bool { return true }
func (outcomeWriter) Update(context.Context, func(*store.Tx) error) (uint64, error) {
	return 0, outcomeErr{}
}

// TestOutcomeUnknownIsUnavailable: a write whose leader lost its majority
// while committing is Unavailable and says it may have been applied, not
// an Internal store failure.
func TestOutcomeUnknownIsUnavailable(t *testing.T) {
	e := newEnv(t, false, func(c *api.Config) { c.Writer = outcomeWriter{} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "one", Lab: &labv1.Lab{}})
	if msg := wantCode(t, err, codes.Unavailable).Message(); !strings.Contains(msg, "may or may not have been applied") {
		t.Errorf("message %q", msg)
	}
}
