package cli

import (
	"net"
	"testing"

	"google.golang.org/grpc"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// partialCapture starts a capture of net/lan1 that reaches h1:eth0 but not
// h3:eth0, and ends at once.
type partialCapture struct {
	labv1.UnimplementedCaptureServiceServer
}

func (partialCapture) Capture(req *labv1.CaptureRequest, st labv1.CaptureService_CaptureServer) error {
	started := &labv1.CaptureStarted{
		Interfaces:  []*labv1.CaptureInterface{{Name: "h1:eth0", Host: "labs/demo/hosts/h1", Network: "labs/demo/networks/lan1", Node: "a", Addresses: []string{"10.0.1.10"}}},
		Unreachable: []*labv1.UnreachableInterface{{Name: "h3:eth0", Node: "c", Reason: "node c unreachable: connection refused"}},
	}
	if err := st.Send(&labv1.CaptureResponse{Event: &labv1.CaptureResponse_Started{Started: started}}); err != nil {
		return err
	}
	return st.Send(&labv1.CaptureResponse{Event: &labv1.CaptureResponse_Stats{Stats: &labv1.CaptureStats{Done: true}}})
}

// TestCaptureNotCaptured: the interfaces a network capture could not reach
// are named on stderr, and the capture goes on.
func TestCaptureNotCaptured(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	f := newFakeServer()
	labv1.RegisterLabServiceServer(s, f)
	labv1.RegisterCaptureServiceServer(s, partialCapture{})
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)

	got := runCLI(t.Context(), lis.Addr().String(), "", []string{"capture", "--lab", "demo", "net/lan1"})
	if got.code != 0 {
		t.Errorf("exit code %d (stderr %q)", got.code, got.stderr)
	}
	want := "capturing on h1:eth0\nnot captured: h3:eth0 (node c unreachable: connection refused)\n0 packets captured\n"
	if got.stderr != want {
		t.Errorf("stderr:\n got %q\nwant %q", got.stderr, want)
	}
}
