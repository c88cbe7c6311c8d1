package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// ListConnections lists a host's TCP connections and UDP sockets.
func (s *Server) ListConnections(ctx context.Context, req *labv1.ListConnectionsRequest) (*labv1.ListConnectionsResponse, error) {
	if c, fctx, err := s.forward(ctx, req.Host); err != nil || c != nil {
		if err != nil {
			return nil, err
		}
		return c.ListConnections(fctx, req)
	}
	_, h, err := s.liveHost("host", req.Host)
	if err != nil {
		return nil, err
	}
	out := &labv1.ListConnectionsResponse{}
	for _, c := range h.TCP().Connections() {
		conn := &labv1.Connection{Protocol: "tcp", State: c.State, LocalAddress: c.Local.String()}
		if c.Remote.IsValid() {
			conn.RemoteAddress = c.Remote.String()
		} else {
			conn.RemoteAddress = "*"
		}
		if c.State != "LISTEN" {
			conn.Tcp = &labv1.TCPInfo{
				Iss: c.ISS, Irs: c.IRS, SndUna: c.SndUna, SndNxt: c.SndNxt, RcvNxt: c.RcvNxt,
				SndWnd: uint32(c.SndWnd), RcvWnd: uint32(c.RcvWnd),
				SndWscale: uint32(c.SndWscale), RcvWscale: uint32(c.RcvWscale),
				Mss: uint32(c.MSS), Cwnd: uint32(c.Cwnd), Ssthresh: uint32(c.Ssthresh),
				Srtt: durationpb.New(c.SRTT), Rttvar: durationpb.New(c.RTTVar), Rto: durationpb.New(c.RTO),
				Retransmits: c.Retransmits, CongestionControl: c.CongestionControl,
				BytesSent: c.BytesSent, BytesAcked: c.BytesAcked, BytesReceived: c.BytesReceived,
				SendQueue: uint32(c.SendQueue), RecvQueue: uint32(c.RecvQueue),
				Sack: c.SACK, Timestamps: c.Timestamps,
			}
		}
		out.Connections = append(out.Connections, conn)
	}
	for _, u := range h.UDP().Sockets() {
		conn := &labv1.Connection{Protocol: "udp", State: "UNCONN", LocalAddress: u.Local.String(), RemoteAddress: "*"}
		if u.Remote.IsValid() {
			conn.State, conn.RemoteAddress = "ESTAB", u.Remote.String()
		}
		out.Connections = append(out.Connections, conn)
	}
	return out, nil
}

// dialer dials TCP from a host, resolving lab host names.
func (s *Server) dialer(host string, h LiveHost) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		hostPart, portPart, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		port, err := strconv.ParseUint(portPart, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", portPart, err)
		}
		ip, err := s.resolve("url", host, hostPart, false)
		if err != nil {
			return nil, errors.New(status.Convert(err).Message())
		}
		return h.TCP().Dial(ctx, netip.AddrPortFrom(ip, uint16(port)))
	}
}

// Fetch makes an HTTP GET from a host, streaming the response.
func (s *Server) Fetch(req *labv1.FetchRequest, stream labv1.LiveService_FetchServer) error {
	if done, err := forwardStream(s, stream.Context(), req.Host, req, labv1.LiveServiceClient.Fetch, stream.Send); done {
		return err
	}
	_, h, err := s.liveHost("host", req.Host)
	if err != nil {
		return err
	}
	u, err := url.Parse(req.Url)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return invalid("url", "%q is not an http:// URL", req.Url)
	}
	timeout := durationOr(req.Timeout, 30*time.Second)
	ctx, cancel := context.WithTimeout(stream.Context(), timeout)
	defer cancel()
	var conn net.Conn
	dial := s.dialer(req.Host, h)
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			conn = c
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return invalid("url", "%v", err)
	}
	hreq.Header.Set("User-Agent", "labctl-fetch")
	resp, err := tr.RoundTrip(hreq)
	if err != nil {
		return status.Errorf(codes.Unavailable, "GET %s: %v", req.Url, err)
	}
	defer resp.Body.Close()
	head := &labv1.FetchHead{Proto: resp.Proto, StatusCode: int32(resp.StatusCode), Status: resp.Status}
	// net/http keeps headers in a map: report them sorted by name.
	for _, k := range slices.Sorted(maps.Keys(resp.Header)) {
		for _, v := range resp.Header[k] {
			head.Headers = append(head.Headers, k+": "+v)
		}
	}
	if conn != nil {
		head.LocalAddress, head.RemoteAddress = conn.LocalAddr().String(), conn.RemoteAddr().String()
	}
	if err := stream.Send(&labv1.FetchResponse{Event: &labv1.FetchResponse_Head{Head: head}}); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if err := stream.Send(&labv1.FetchResponse{Event: &labv1.FetchResponse_Body{Body: append([]byte(nil), buf[:n]...)}}); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return status.Errorf(codes.Unavailable, "reading the body: %v", err)
		}
	}
}

// Bench sends TCP data from a host to another host's discard service (port
// 9) and reports the throughput when the receiver has everything.
func (s *Server) Bench(req *labv1.BenchRequest, stream labv1.LiveService_BenchServer) error {
	if done, err := forwardStream(s, stream.Context(), req.Host, req, labv1.LiveServiceClient.Bench, stream.Send); done {
		return err
	}
	h, dst, err := s.liveTarget(req.Host, req.Destination, req.Ipv6)
	if err != nil {
		return err
	}
	dur := durationOr(req.Duration, 0)
	switch {
	case req.Bytes > 1<<40:
		return invalid("bytes", "%d is above 1 TiB", req.Bytes)
	case dur < 0 || dur > 10*time.Minute:
		return invalid("duration", "%v is outside 0-10m", dur)
	case req.Bytes == 0 && dur == 0:
		dur = 10 * time.Second
	}
	ctx := stream.Context()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := h.TCP().Dial(dctx, netip.AddrPortFrom(dst, 9))
	cancel()
	if err != nil {
		return status.Errorf(codes.Unavailable, "connect to %s port 9 (discard): %v", dst, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	chunk := make([]byte, 256<<10)
	start := time.Now()
	lastReport := start
	var sent uint64
	for {
		if req.Bytes > 0 && sent >= req.Bytes || req.Bytes == 0 && time.Since(start) >= dur {
			break
		}
		n := uint64(len(chunk))
		if req.Bytes > 0 {
			n = min(n, req.Bytes-sent)
		}
		if req.Bytes == 0 {
			c.SetWriteDeadline(start.Add(dur))
		}
		w, err := c.Write(chunk[:n])
		sent += uint64(w)
		if req.Bytes == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return status.Errorf(codes.Aborted, "after %d bytes: %v", sent, err)
		}
		if time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			if err := stream.Send(&labv1.BenchResponse{Event: &labv1.BenchResponse_Progress{Progress: &labv1.BenchProgress{
				Bytes: c.Info().BytesAcked, Elapsed: durationpb.New(time.Since(start)),
			}}}); err != nil {
				return err
			}
		}
	}
	if req.Bytes == 0 {
		// A timed run counts what the receiver acknowledged in the time,
		// and drops what is still queued rather than draining it.
		info := c.Info()
		c.SetLinger(0)
		elapsed := time.Since(start)
		return stream.Send(&labv1.BenchResponse{Event: &labv1.BenchResponse_Result{Result: &labv1.BenchResult{
			Bytes: info.BytesAcked, Seconds: elapsed.Seconds(),
			Gbps:        float64(info.BytesAcked) * 8 / elapsed.Seconds() / 1e9,
			Retransmits: info.Retransmits,
		}}})
	}
	// Done when the receiver has every byte: our FIN is acknowledged after
	// all the data, and discard closes its side in turn.
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.Copy(io.Discard, c); err != nil {
		return status.Errorf(codes.Aborted, "waiting for the receiver: %v", err)
	}
	elapsed := time.Since(start)
	info := c.Info()
	return stream.Send(&labv1.BenchResponse{Event: &labv1.BenchResponse_Result{Result: &labv1.BenchResult{
		Bytes: sent, Seconds: elapsed.Seconds(),
		Gbps:        float64(sent) * 8 / elapsed.Seconds() / 1e9,
		Retransmits: info.Retransmits,
	}}})
}
