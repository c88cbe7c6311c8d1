package probe

import (
	"context"
	"fmt"
	"io"
	"iter"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// FetchOptions configure Fetch.
type FetchOptions struct {
	URL     string        // http:// only
	Timeout time.Duration // for the whole fetch: 30s
	// Resolve turns the URL's host (an address, or a lab host's name)
	// into an address; nil accepts addresses only.
	Resolve func(host string) (netip.Addr, error)
}

// A FetchEvent is a FetchHead or a FetchBody.
type FetchEvent interface{ fetchEvent() }

// FetchHead is the response's status line and headers, sorted by name.
type FetchHead struct {
	Proto         string // "HTTP/1.1"
	StatusCode    int
	Status        string // "200 OK"
	Headers       []string
	Local, Remote net.Addr // the connection's ends
}

// FetchBody is the next piece of the body; the receiver owns it.
type FetchBody []byte

func (FetchHead) fetchEvent() {}
func (FetchBody) fetchEvent() {}

// Fetch makes an HTTP GET from h, yielding the head and then the body.
func Fetch(ctx context.Context, h Host, opts FetchOptions) iter.Seq2[FetchEvent, error] {
	return func(yield func(FetchEvent, error) bool) {
		if err := fetch(ctx, h, opts, func(ev FetchEvent) bool { return yield(ev, nil) }); err != nil {
			yield(nil, err)
		}
	}
}

func fetch(ctx context.Context, h Host, o FetchOptions, yield func(FetchEvent) bool) error {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return badOption("url", "%q is not an http:// URL", o.URL)
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Timeout < 0 {
		return badOption("timeout", "must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var conn net.Conn
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := h.dial(ctx, addr, o.Resolve)
			if err == nil {
				conn = c
			}
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return badOption("url", "%v", err)
	}
	req.Header.Set("User-Agent", "labctl-fetch")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return fail(ErrConnect, "GET %s: %w", o.URL, err)
	}
	defer resp.Body.Close()
	head := FetchHead{Proto: resp.Proto, StatusCode: resp.StatusCode, Status: resp.Status}
	// net/http keeps headers in a map: report them sorted by name.
	for _, k := range slices.Sorted(maps.Keys(resp.Header)) {
		for _, v := range resp.Header[k] {
			head.Headers = append(head.Headers, k+": "+v)
		}
	}
	if conn != nil {
		head.Local, head.Remote = conn.LocalAddr(), conn.RemoteAddr()
	}
	if !yield(head) {
		return nil
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 && !yield(FetchBody(append([]byte(nil), buf[:n]...))) {
			return nil
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fail(ErrTransfer, "reading the body: %w", err)
		}
	}
}

// dial connects to addr ("HOST:PORT"), resolving HOST with resolve when it
// is not an address.
func (h Host) dial(ctx context.Context, addr string, resolve func(string) (netip.Addr, error)) (net.Conn, error) {
	host, portPart, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portPart, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portPart, err)
	}
	if resolve == nil {
		resolve = parseAddr
	}
	ip, err := resolve(host)
	if err != nil {
		return nil, err
	}
	c, err := h.tcp.Dial(ctx, netip.AddrPortFrom(ip, uint16(port)))
	if err != nil {
		return nil, err // net/http names the operation
	}
	return c, nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a, nil
}
