package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

const (
	h1 = "labs/demo/hosts/h1"
	h2 = "labs/demo/hosts/h2"
)

func socketEnv(t *testing.T) (*env, context.Context) {
	e := newEnv(t, true)
	e.apply(t, demoWithServices())
	e.waitRunning(t, "labs/demo/hosts/r1", h1, h2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return e, ctx
}

// readAll collects a socket stream's data up to eof, and how the call then
// ended (nil for OK).
func readAll[T interface {
	GetData() []byte
	GetEof() *labv1.SocketEOF
}](recv func() (T, error)) ([]byte, bool, error) {
	var got []byte
	eof := false
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return got, eof, nil
		}
		if err != nil {
			return got, eof, err
		}
		got = append(got, m.GetData()...)
		if m.GetEof() != nil {
			eof = true
		}
	}
}

func TestDialEchoHalfClose(t *testing.T) {
	e, ctx := socketEnv(t)
	st, err := e.sock.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&labv1.DialRequest{Event: &labv1.DialRequest_Open{Open: &labv1.DialOpen{Host: h1, Address: "h2:7"}}})
	first, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if o := first.GetOpened(); o == nil || !strings.HasSuffix(o.RemoteAddress, ":7") || !strings.HasPrefix(o.LocalAddress, "10.0.1.") {
		t.Fatalf("first message %v, want opened from h1 to port 7", first)
	}
	want := bytes.Repeat([]byte("labnet "), 100000)
	for b := want; len(b) > 0; b = b[min(len(b), 60000):] {
		if err := st.Send(&labv1.DialRequest{Event: &labv1.DialRequest_Data{Data: b[:min(len(b), 60000)]}}); err != nil {
			t.Fatal(err)
		}
	}
	// The half-close reaches echo, which sends the rest and closes too.
	st.CloseSend()
	got, eof, err := readAll(st.Recv)
	if err != nil || !eof || !bytes.Equal(got, want) {
		t.Fatalf("echo: %d bytes (want %d), eof %v, err %v", len(got), len(want), eof, err)
	}
}

func TestDialErrors(t *testing.T) {
	e, ctx := socketEnv(t)
	for _, tc := range []struct {
		name  string
		first *labv1.DialRequest
		code  codes.Code
		field string
		msg   string
	}{
		{"refused", dialOpen(h1, "h2:81"), codes.Unavailable, "", "connection refused"},
		{"no host", dialOpen("labs/demo/hosts/nope", "h2:7"), codes.NotFound, "", "nope"},
		{"bad host name", dialOpen("h1", "h2:7"), codes.InvalidArgument, "open.host", ""},
		{"no port", dialOpen(h1, "h2"), codes.InvalidArgument, "open.address", ""},
		{"port 0", dialOpen(h1, "h2:0"), codes.InvalidArgument, "open.address", ""},
		{"unknown name", dialOpen(h1, "h9:80"), codes.InvalidArgument, "open.address", ""},
		{"data first", &labv1.DialRequest{Event: &labv1.DialRequest_Data{Data: []byte("x")}}, codes.InvalidArgument, "open", ""},
		{"timeout", &labv1.DialRequest{Event: &labv1.DialRequest_Open{Open: &labv1.DialOpen{Host: h1, Address: "h2:7", Timeout: ms(-1)}}}, codes.InvalidArgument, "open.timeout", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := e.sock.Dial(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st.Send(tc.first)
			_, err = st.Recv()
			s := wantCode(t, err, tc.code)
			if tc.field != "" {
				wantField(t, err, tc.field)
			}
			if !strings.Contains(s.Message(), tc.msg) {
				t.Errorf("message %q does not say %q", s.Message(), tc.msg)
			}
		})
	}
}

func dialOpen(host, addr string) *labv1.DialRequest {
	return &labv1.DialRequest{Event: &labv1.DialRequest_Open{Open: &labv1.DialOpen{Host: host, Address: addr}}}
}

// expose listens on h2:port and returns the announcements.
func expose(t *testing.T, e *env, ctx context.Context, port uint32) func() *labv1.ExposeConnection {
	t.Helper()
	st, err := e.sock.Expose(ctx, &labv1.ExposeRequest{Host: h2, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil || m.GetListening() == nil {
		t.Fatalf("expose: %v, %v", m, err)
	}
	return func() *labv1.ExposeConnection {
		m, err := st.Recv()
		if err != nil || m.GetConnection() == nil {
			t.Fatalf("expose: %v, %v", m, err)
		}
		return m.GetConnection()
	}
}

// TestExposeAccept: a connection h1 makes to an exposed port of h2 is
// carried both ways, with half-closes in either order.
func TestExposeAccept(t *testing.T) {
	e, ctx := socketEnv(t)
	next := expose(t, e, ctx, 8080)

	dial, err := e.sock.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dial.Send(dialOpen(h1, "h2:8080"))
	if m, err := dial.Recv(); err != nil || m.GetOpened() == nil {
		t.Fatalf("dial: %v %v", m, err)
	}
	conn := next()
	if !strings.HasPrefix(conn.RemoteAddress, "10.0.1.") || !strings.HasSuffix(conn.LocalAddress, ":8080") {
		t.Fatalf("announced %v", conn)
	}
	acc, err := e.sock.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acc.Send(&labv1.AcceptRequest{Event: &labv1.AcceptRequest_Open{Open: &labv1.AcceptOpen{Host: h2, Connection: conn.Id}}})
	if m, err := acc.Recv(); err != nil || m.GetOpened().GetRemoteAddress() != conn.RemoteAddress {
		t.Fatalf("accept: %v %v", m, err)
	}
	// The dialer sends and half-closes; the acceptor reads it all and EOF,
	// then answers and closes.
	dial.Send(&labv1.DialRequest{Event: &labv1.DialRequest_Data{Data: []byte("hello from h1")}})
	dial.CloseSend()
	if m, _ := acc.Recv(); string(m.GetData()) != "hello from h1" {
		t.Fatalf("accept got %v", m)
	}
	if m, _ := acc.Recv(); m.GetEof() == nil {
		t.Fatalf("accept got %v, want eof", m)
	}
	acc.Send(&labv1.AcceptRequest{Event: &labv1.AcceptRequest_Data{Data: []byte("hello from outside")}})
	acc.CloseSend()
	if _, _, err := readAll(acc.Recv); err != nil {
		t.Fatalf("accept ended with %v", err)
	}
	got, eof, err := readAll(dial.Recv)
	if string(got) != "hello from outside" || !eof || err != nil {
		t.Fatalf("dial got %q, eof %v, %v", got, eof, err)
	}

	// A second Accept of the same connection finds nothing.
	acc2, _ := e.sock.Accept(ctx)
	acc2.Send(&labv1.AcceptRequest{Event: &labv1.AcceptRequest_Open{Open: &labv1.AcceptOpen{Host: h2, Connection: conn.Id}}})
	_, err = acc2.Recv()
	wantCode(t, err, codes.NotFound)

	// The port is taken while the expose runs.
	st, _ := e.sock.Expose(ctx, &labv1.ExposeRequest{Host: h2, Port: 8080})
	_, err = st.Recv()
	wantCode(t, err, codes.FailedPrecondition)
	st, _ = e.sock.Expose(ctx, &labv1.ExposeRequest{Host: h2, Port: 70000})
	_, err = st.Recv()
	wantField(t, err, "port")
}

// TestResets: a rejected Accept resets the lab connection, which ends the
// Dial call with ABORTED; a cancelled Dial resets the connection, which the
// acceptor sees as ABORTED.
func TestResets(t *testing.T) {
	e, ctx := socketEnv(t)
	next := expose(t, e, ctx, 9000)
	dialer := func(ctx context.Context) labv1.SocketService_DialClient {
		d, err := e.sock.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d.Send(dialOpen(h1, "10.0.2.2:9000"))
		if m, err := d.Recv(); err != nil || m.GetOpened() == nil {
			t.Fatalf("dial: %v %v", m, err)
		}
		return d
	}
	d := dialer(ctx)
	acc, _ := e.sock.Accept(ctx)
	acc.Send(&labv1.AcceptRequest{Event: &labv1.AcceptRequest_Open{Open: &labv1.AcceptOpen{Host: h2, Connection: next().Id, Reject: true}}})
	acc.CloseSend()
	readAll(acc.Recv)
	_, _, err := readAll(d.Recv)
	if s := wantCode(t, err, codes.Aborted); !strings.Contains(s.Message(), "reset") {
		t.Errorf("dial after the reset: %v", s.Message())
	}

	dctx, cancel := context.WithCancel(ctx)
	_ = dialer(dctx) // the connection the Accept below takes
	acc, _ = e.sock.Accept(ctx)
	acc.Send(&labv1.AcceptRequest{Event: &labv1.AcceptRequest_Open{Open: &labv1.AcceptOpen{Host: h2, Connection: next().Id}}})
	if m, err := acc.Recv(); err != nil || m.GetOpened() == nil {
		t.Fatalf("accept: %v %v", m, err)
	}
	cancel()
	_, _, err = readAll(acc.Recv)
	if s := wantCode(t, err, codes.Aborted); !strings.Contains(s.Message(), "reset") {
		t.Errorf("accept after the dialer's reset: %v", s.Message())
	}
}

// TestDatagrams: UDP to h2's echo service, by name and by address, comes
// back from h2.
func TestDatagrams(t *testing.T) {
	e, ctx := socketEnv(t)
	v4, v6 := e.addrs(t, h2)
	st, err := e.sock.Datagrams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&labv1.DatagramsRequest{Event: &labv1.DatagramsRequest_Open{Open: &labv1.DatagramsOpen{Host: h1}}})
	if m, err := st.Recv(); err != nil || m.GetOpened() == nil {
		t.Fatalf("open: %v %v", m, err)
	}
	for _, to := range []string{"[" + v6 + "]:7", "h2:7"} {
		st.Send(&labv1.DatagramsRequest{Event: &labv1.DatagramsRequest_Datagram{Datagram: &labv1.Datagram{Address: to, Data: []byte("ping " + to)}}})
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		d := m.GetDatagram()
		from := v4 + ":7"
		if strings.HasPrefix(to, "[") {
			from = "[" + v6 + "]:7"
		}
		if d.GetAddress() != from || string(d.GetData()) != "ping "+to {
			t.Fatalf("to %s: got %v, want %q from %s", to, d, "ping "+to, from)
		}
	}
	st.Send(&labv1.DatagramsRequest{Event: &labv1.DatagramsRequest_Datagram{Datagram: &labv1.Datagram{Address: "nowhere", Data: []byte("x")}}})
	for {
		if _, err = st.Recv(); err != nil {
			break
		}
	}
	wantField(t, err, "datagram.address")
}

// TestSocketsEndOnStop: labd shutting down (Server.Stop) ends open socket
// calls at once instead of holding up the graceful stop.
func TestSocketsEndOnStop(t *testing.T) {
	e, ctx := socketEnv(t)
	d, _ := e.sock.Dial(ctx)
	d.Send(dialOpen(h1, "h2:7"))
	if m, err := d.Recv(); err != nil || m.GetOpened() == nil {
		t.Fatalf("dial: %v %v", m, err)
	}
	x, _ := e.sock.Expose(ctx, &labv1.ExposeRequest{Host: h2, Port: 8080})
	if m, err := x.Recv(); err != nil || m.GetListening() == nil {
		t.Fatalf("expose: %v %v", m, err)
	}
	u, _ := e.sock.Datagrams(ctx)
	u.Send(&labv1.DatagramsRequest{Event: &labv1.DatagramsRequest_Open{Open: &labv1.DatagramsOpen{Host: h1}}})
	if m, err := u.Recv(); err != nil || m.GetOpened() == nil {
		t.Fatalf("datagrams: %v %v", m, err)
	}
	e.srv.Stop()
	_, _, err := readAll(d.Recv)
	wantCode(t, err, codes.Unavailable)
	_, err = x.Recv()
	wantCode(t, err, codes.Unavailable)
	_, err = u.Recv()
	wantCode(t, err, codes.Unavailable)
}

// TestExposeEndResetsPending: a connection announced but not taken is
// reset when its Expose call ends.
func TestExposeEndResetsPending(t *testing.T) {
	e, ctx := socketEnv(t)
	xctx, cancel := context.WithCancel(ctx)
	next := expose(t, e, xctx, 9100)
	d, _ := e.sock.Dial(ctx)
	d.Send(dialOpen(h1, "h2:9100"))
	if m, err := d.Recv(); err != nil || m.GetOpened() == nil {
		t.Fatalf("dial: %v %v", m, err)
	}
	next()
	cancel()
	_, _, err := readAll(d.Recv)
	if s := wantCode(t, err, codes.Aborted); !strings.Contains(s.Message(), "reset") {
		t.Errorf("dial after its expose ended: %v", s.Message())
	}
}
