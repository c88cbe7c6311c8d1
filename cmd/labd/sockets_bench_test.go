package main_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkCurl measures curl's download rate (MB/s, of 100 MB) straight
// from a local Go HTTP server, through labctl port-forward to h2's http
// service, and through labctl socks from h1 to h2 (across router r1), in
// one run:
//
//	go test -run '^$' -bench Curl -benchtime 5x -count 3 ./cmd/labd
func BenchmarkCurl(b *testing.B) {
	const size = 100_000_000
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = byte('a' + i%26)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for n := 0; n < size; n += len(block) {
			w.Write(block[:min(len(block), size-n)])
		}
	})}
	go srv.Serve(l)
	defer srv.Close()

	d := twoLans(b)
	web := d.background(b, "port-forward", "h2", ":80").line(`Forwarding from (127\.0\.0\.1:\d+) -> h2:80`)[1]
	proxy := d.background(b, "socks", "h1", "--listen", "127.0.0.1:0").line(`SOCKS5 proxy on (127\.0\.0\.1:\d+)`)[1]
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"direct", []string{"http://" + l.Addr().String() + "/"}},
		{"port-forward", []string{fmt.Sprintf("http://%s/bytes/%d", web, size)}},
		{"socks5", []string{"--socks5-hostname", proxy, fmt.Sprintf("http://h2/bytes/%d", size)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				out := curl(b, append([]string{"-o", "/dev/null", "-w", "%{size_download}"}, bc.args...)...)
				if string(out) != strconv.Itoa(size) {
					b.Fatalf("curl downloaded %s bytes, want %d", out, size)
				}
			}
		})
	}
}
