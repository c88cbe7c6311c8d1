package services

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// recordingClient is an HTTP client that remembers the local address of
// each connection it dials: the client's port, as the server should see it.
type recordingClient struct {
	*http.Client
	mu    sync.Mutex
	local []string
}

func newClient(t testing.TB) *recordingClient {
	rc := &recordingClient{}
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				rc.mu.Lock()
				rc.local = append(rc.local, c.LocalAddr().String())
				rc.mu.Unlock()
			}
			return c, err
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	rc.Client = &http.Client{Transport: tr}
	return rc
}

func (rc *recordingClient) lastLocal() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.local[len(rc.local)-1]
}

func get(t testing.TB, c *http.Client, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHTTPIndex(t *testing.T) {
	_, n := startServices(t, "http")
	addr := n.addr(t, "tcp", 80)
	url := "http://" + addr + "/"
	_, serverPort, _ := net.SplitHostPort(addr)

	for _, tc := range []struct {
		name   string
		header []string
		html   bool
	}{
		{"no Accept", nil, false},
		{"curl", []string{"User-Agent", "curl/8.5.0", "Accept", "*/*"}, false},
		{"text/plain", []string{"Accept", "text/plain"}, false},
		{"html refused", []string{"Accept", "text/html;q=0, text/plain"}, false},
		{"browser", []string{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, true},
		{"html second", []string{"Accept", "text/plain; q=0.5, text/html"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t)
			resp, body := get(t, c.Client, url, tc.header...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s", resp.Status)
			}
			ct := resp.Header.Get("Content-Type")
			wantCT := "text/plain; charset=utf-8"
			if tc.html {
				wantCT = "text/html; charset=utf-8"
			}
			if ct != wantCT {
				t.Errorf("Content-Type %q, want %q", ct, wantCT)
			}
			if tc.html != strings.HasPrefix(body, "<!DOCTYPE html>") {
				t.Errorf("html %v, but the body starts %.40q", tc.html, body)
			}
			_, clientPort, _ := net.SplitHostPort(c.lastLocal())
			for _, want := range []string{
				"labnet host demo/h1",
				"node-a",
				"eth0", "lan1", "10.0.1.2/24", "fd00:1::2/64",
				"eth1", "wan", "192.0.2.7/29",
				"You are 127.0.0.1 port " + clientPort + "\n",
				"I am 127.0.0.1 port " + serverPort + "\n",
			} {
				if tc.html && strings.HasSuffix(want, "\n") {
					want = strings.TrimSuffix(want, "\n") + "</p>"
				}
				if !strings.Contains(body, want) {
					t.Errorf("the page lacks %q:\n%s", want, body)
				}
			}
		})
	}
}

func TestHTTPIndexText(t *testing.T) {
	_, n := startServices(t, "http")
	c := newClient(t)
	_, body := get(t, c.Client, "http://"+n.addr(t, "tcp", 80)+"/")
	_, clientPort, _ := net.SplitHostPort(c.lastLocal())
	_, serverPort, _ := net.SplitHostPort(n.addr(t, "tcp", 80))
	want := "labnet host demo/h1 (node node-a)\n" +
		"\n" +
		"interface  network  addresses\n" +
		"eth0       lan1     10.0.1.2/24 fd00:1::2/64\n" +
		"eth1       wan      192.0.2.7/29\n" +
		"\n" +
		"You are 127.0.0.1 port " + clientPort + "\n" +
		"I am 127.0.0.1 port " + serverPort + "\n"
	if body != want {
		t.Errorf("page:\n%s\nwant:\n%s", body, want)
	}
}

func TestHTTPIndexEscapes(t *testing.T) {
	n := newLoopNet()
	host := HostInfo{Name: "<script>alert(1)</script>", Interfaces: []InterfaceInfo{{Name: "eth0&"}}}
	s, err := Start(context.Background(), n, host, []string{"http"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newClient(t)
	_, body := get(t, c.Client, "http://"+n.addr(t, "tcp", 80)+"/", "Accept", "text/html")
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") || !strings.Contains(body, "eth0&amp;") {
		t.Errorf("names not escaped:\n%s", body)
	}
}

// wantBytes is /bytes/N's documented body, built from its description:
// 1024 lines of 64 bytes, line k being k*64 in 4 hex digits, a space, 58
// characters of the RFC 864 ring from ring[k mod 95], and "\n", repeated.
func wantBytes(n int) []byte {
	var block strings.Builder
	for k := range 1024 {
		fmt.Fprintf(&block, "%04x ", k*64)
		for i := range 58 {
			block.WriteByte(testRing[(k+i)%95])
		}
		block.WriteByte('\n')
	}
	if block.Len() != 65536 {
		panic("block is not 64 KiB")
	}
	b := []byte(strings.Repeat(block.String(), n/65536+1))
	return b[:n]
}

func TestHTTPBytes(t *testing.T) {
	_, n := startServices(t, "http")
	base := "http://" + n.addr(t, "tcp", 80)
	c := newClient(t)

	const size = 10_000_000
	resp, err := c.Get(base + "/bytes/" + strconv.Itoa(size))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
		t.Fatalf("status %s, Content-Length %d; want 200 and %d", resp.Status, resp.ContentLength, size)
	}
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	if err != nil || got != size {
		t.Fatalf("read %d bytes, %v; want %d", got, err, size)
	}
	if sum, want := h.Sum(nil), sha256.Sum256(wantBytes(size)); string(sum) != string(want[:]) {
		t.Fatalf("SHA-256 %x, want %x", sum, want)
	}

	// The first lines, as the package documents them.
	_, body := get(t, c.Client, base+"/bytes/130")
	wantStart := "0000 !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ\n" +
		"0040 \"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\n" +
		"00"
	if body != wantStart {
		t.Errorf("/bytes/130 = %q, want %q", body, wantStart)
	}
}

func TestHTTPStatus(t *testing.T) {
	_, n := startServices(t, "http")
	base := "http://" + n.addr(t, "tcp", 80)
	c := newClient(t)
	for _, tc := range []struct {
		method, path string
		status       int
		length       int64 // -1: do not check
	}{
		{"GET", "/bytes/0", 200, 0},
		{"HEAD", "/bytes/10737418240", 200, 10 << 30},
		{"GET", "/bytes/abc", 400, -1},
		{"GET", "/bytes/-1", 400, -1},
		{"GET", "/bytes/+5", 400, -1},
		{"GET", "/bytes/1e3", 400, -1},
		{"GET", "/bytes/10737418241", 400, -1},
		{"GET", "/bytes/99999999999999999999999", 400, -1},
		{"GET", "/bytes/", 404, -1},
		{"GET", "/bytes", 404, -1},
		{"GET", "/bytes/5/6", 404, -1},
		{"GET", "/nope", 404, -1},
		{"GET", "/index.html", 404, -1},
		{"POST", "/", 405, -1},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %s, want %d", tc.method, tc.path, resp.Status, tc.status)
		}
		if tc.length >= 0 && resp.ContentLength != tc.length {
			t.Errorf("%s %s: Content-Length %d, want %d", tc.method, tc.path, resp.ContentLength, tc.length)
		}
	}
}
