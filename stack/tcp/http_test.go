package tcp

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestHTTP serves net/http on one virtual host and fetches from another:
// ordinary Go network code runs unchanged on our sockets.
func TestHTTP(t *testing.T) {
	p := newPair(t, 1500, Options{})
	l, err := p.tb.Listen(netip.AddrPortFrom(netip.Addr{}, 80))
	if err != nil {
		t.Fatal(err)
	}
	body := randomData(3<<20, 9)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(body)
			return
		}
		fmt.Fprintf(w, "hello %s from %s", r.RemoteAddr, r.Context().Value(http.LocalAddrContextKey))
	})}
	go srv.Serve(l)
	defer srv.Close()

	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil {
				return nil, err
			}
			return p.ta.Dial(ctx, ap)
		},
	}}
	for range 3 { // keep-alive reuses the connection
		resp, err := client.Get("http://10.0.0.2/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(b), "hello 10.0.0.1:") || !strings.Contains(string(b), "from 10.0.0.2:80") {
			t.Fatalf("body %q", b)
		}
	}
	resp, err := client.Get("http://[fd00::2]/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || sha256.Sum256(b) != sha256.Sum256(body) {
		t.Fatalf("big body: %d bytes, %v", len(b), err)
	}
}
