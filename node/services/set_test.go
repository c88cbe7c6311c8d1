package services

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestKnownAndValidate(t *testing.T) {
	want := []string{"chargen", "daytime", "discard", "echo", "http"}
	if got := Known(); !slices.Equal(got, want) {
		t.Fatalf("Known() = %q, want %q", got, want)
	}
	for _, name := range want {
		if err := Validate(name); err != nil {
			t.Errorf("Validate(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "ftp", "Echo", "echo "} {
		err := Validate(name)
		if !errors.Is(err, ErrUnknownService) || !strings.Contains(err.Error(), "chargen, daytime, discard, echo, http") {
			t.Errorf("Validate(%q) = %v, want ErrUnknownService listing the known ones", name, err)
		}
	}
}

func TestStartPorts(t *testing.T) {
	_, n := startServices(t, Known()...)
	tcp, udp := n.ports()
	if want := []uint16{7, 9, 13, 19, 80}; !slices.Equal(tcp, want) {
		t.Errorf("TCP ports %v, want %v", tcp, want)
	}
	if want := []uint16{7, 9, 13, 19}; !slices.Equal(udp, want) {
		t.Errorf("UDP ports %v, want %v", udp, want)
	}
}

func TestStartTwiceTheSameName(t *testing.T) {
	_, n := startServices(t, "echo", "echo") // loopNet fails a second listen on a port
	if tcp, udp := n.ports(); len(tcp) != 1 || len(udp) != 1 {
		t.Errorf("ports %v %v, want echo once", tcp, udp)
	}
}

func TestStartUnknown(t *testing.T) {
	before := runtime.NumGoroutine()
	n := newLoopNet()
	s, err := Start(context.Background(), n, testHost, []string{"echo", "http", "gopher"}, nil)
	if s != nil || !errors.Is(err, ErrUnknownService) {
		t.Fatalf("Start = %v, %v; want ErrUnknownService", s, err)
	}
	if !strings.Contains(err.Error(), `"gopher"`) || !strings.Contains(err.Error(), "chargen, daytime, discard, echo, http") {
		t.Errorf("error %q should name the service and list the known ones", err)
	}
	if tcp, udp := n.ports(); len(tcp)+len(udp) != 0 {
		t.Errorf("listened on %v %v before failing", tcp, udp)
	}
	if got := runtime.NumGoroutine(); got != before {
		t.Errorf("%d goroutines after the failed Start, %d before", got, before)
	}
}

func TestStartListenFails(t *testing.T) {
	before := runtime.NumGoroutine()
	n := newLoopNet()
	n.fail["udp/13"] = errors.New("address already in use")
	s, err := Start(context.Background(), n, testHost, []string{"echo", "http", "daytime", "chargen"}, nil)
	if s != nil || err == nil || !strings.Contains(err.Error(), "daytime") || !strings.Contains(err.Error(), "udp port 13") {
		t.Fatalf("Start = %v, %v; want an error naming daytime and udp port 13", s, err)
	}
	// What had started (echo, http, daytime's TCP) is closed again.
	for _, port := range []uint16{7, 80, 13} {
		if c, err := net.Dial("tcp", n.addr(t, "tcp", port)); err == nil {
			c.Close()
			t.Errorf("tcp port %d still accepts connections", port)
		}
	}
	if _, err := net.ListenPacket("udp", n.addr(t, "udp", 7)); err != nil {
		t.Errorf("echo's UDP socket is still bound: %v", err)
	}
	waitGoroutines(t, before)
}

func TestContextStops(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	n := newLoopNet()
	s, err := Start(ctx, n, testHost, Known(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dialTCP(t, n.addr(t, "tcp", 7))
	cancel()
	// The set stops by itself: the connection is closed under the client.
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after cancel succeeded")
	}
	c.Close()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	waitGoroutines(t, before)

	if _, err := Start(ctx, n, testHost, Known(), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a done context = %v, want context.Canceled", err)
	}
}

// TestClose closes a set in the middle of every kind of traffic and checks
// that Close takes it all down and leaves no goroutine behind.
func TestClose(t *testing.T) {
	before := runtime.NumGoroutine()
	n := newLoopNet()
	s, err := Start(context.Background(), n, testHost, Known(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}

	// echo: a connection that is idle.
	echo := dialTCP(t, n.addr(t, "tcp", 7))
	echo.Write([]byte("x"))
	io.ReadFull(echo, make([]byte, 1))
	// discard: a connection that is sending.
	discard := dialTCP(t, n.addr(t, "tcp", 9))
	discard.Write(make([]byte, 1<<20))
	// chargen: a stream being read.
	chargen := dialTCP(t, n.addr(t, "tcp", 19))
	if _, err := bufio.NewReader(chargen).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// http: one idle keep-alive connection and a 10 GiB download under way.
	hc := newClient(t)
	get(t, hc.Client, "http://"+n.addr(t, "tcp", 80)+"/")
	download, err := newClient(t).Get("http://" + n.addr(t, "tcp", 80) + "/bytes/10737418240")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(download.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	// A raw connection that never sends its request.
	silent := dialTCP(t, n.addr(t, "tcp", 80))
	// UDP traffic.
	u := dialUDP(t, n.addr(t, "udp", 19))
	u.Write([]byte("x"))
	u.Read(make([]byte, 600))

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close waited for the set's goroutines (allow the instant between a
	// goroutine's last wg.Done and its exit).
	for i := 0; len(ourGoroutines()) > 0; i++ {
		if i == 50 {
			t.Fatalf("goroutines still running after Close:\n%s", strings.Join(ourGoroutines(), "\n\n"))
		}
		time.Sleep(time.Millisecond)
	}

	// Every connection was closed under its client.
	for name, c := range map[string]net.Conn{"echo": echo, "discard": discard, "chargen": chargen, "silent http": silent} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var err error
		for err == nil {
			_, err = c.Read(make([]byte, 64<<10))
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: connection still open after Close", name)
		}
		c.Close()
	}
	if _, err := io.Copy(io.Discard, download.Body); err == nil {
		t.Error("the 10 GiB download completed")
	}
	download.Body.Close()
	hc.Transport.(*http.Transport).CloseIdleConnections()
	u.Close()

	// Nothing listens any more.
	for _, port := range []uint16{7, 9, 13, 19, 80} {
		if c, err := net.Dial("tcp", n.addr(t, "tcp", port)); err == nil {
			c.Close()
			t.Errorf("tcp port %d still accepts connections", port)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitGoroutines(t, before)
}
