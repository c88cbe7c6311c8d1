package api

import (
	"context"
	"errors"
	"net/netip"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/labnet-dev/labnet/node/probe"
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
	for _, c := range h.Connections() {
		conn := &labv1.Connection{Protocol: c.Protocol, State: c.State, LocalAddress: c.Local.String(), RemoteAddress: "*"}
		if c.Remote.IsValid() {
			conn.RemoteAddress = c.Remote.String()
		}
		if t := c.TCP; t != nil {
			conn.Tcp = &labv1.TCPInfo{
				Iss: t.ISS, Irs: t.IRS, SndUna: t.SndUna, SndNxt: t.SndNxt, RcvNxt: t.RcvNxt,
				SndWnd: uint32(t.SndWnd), RcvWnd: uint32(t.RcvWnd),
				SndWscale: uint32(t.SndWscale), RcvWscale: uint32(t.RcvWscale),
				Mss: uint32(t.MSS), Cwnd: uint32(t.Cwnd), Ssthresh: uint32(t.Ssthresh),
				Srtt: durationpb.New(t.SRTT), Rttvar: durationpb.New(t.RTTVar), Rto: durationpb.New(t.RTO),
				Retransmits: t.Retransmits, CongestionControl: t.CongestionControl,
				BytesSent: t.BytesSent, BytesAcked: t.BytesAcked, BytesReceived: t.BytesReceived,
				SendQueue: uint32(t.SendQueue), RecvQueue: uint32(t.RecvQueue),
				Sack: t.SACK, Timestamps: t.Timestamps,
			}
		}
		out.Connections = append(out.Connections, conn)
	}
	return out, nil
}

// Fetch makes an HTTP GET from a host, streaming the response
// (probe.Fetch).
func (s *Server) Fetch(req *labv1.FetchRequest, stream labv1.LiveService_FetchServer) error {
	if done, err := forwardStream(s, stream.Context(), req.Host, req, labv1.LiveServiceClient.Fetch, stream.Send); done {
		return err
	}
	_, h, err := s.liveHost("host", req.Host)
	if err != nil {
		return err
	}
	opts := probe.FetchOptions{URL: req.Url, Resolve: func(name string) (netip.Addr, error) {
		ip, err := s.resolve("url", req.Host, name, false)
		if err != nil {
			return netip.Addr{}, errors.New(status.Convert(err).Message())
		}
		return ip, nil
	}}
	if opts.Timeout, err = positive("timeout", req.Timeout); err != nil {
		return err
	}
	for ev, err := range probe.Fetch(stream.Context(), h.Probe(), opts) {
		if err != nil {
			return probeError(err, codes.Unavailable)
		}
		var m *labv1.FetchResponse
		switch ev := ev.(type) {
		case probe.FetchHead:
			head := &labv1.FetchHead{Proto: ev.Proto, StatusCode: int32(ev.StatusCode), Status: ev.Status, Headers: ev.Headers}
			if ev.Local != nil {
				head.LocalAddress, head.RemoteAddress = ev.Local.String(), ev.Remote.String()
			}
			m = &labv1.FetchResponse{Event: &labv1.FetchResponse_Head{Head: head}}
		case probe.FetchBody:
			m = &labv1.FetchResponse{Event: &labv1.FetchResponse_Body{Body: ev}}
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// Bench sends TCP data from a host to another host's discard service (port
// 9) and reports the throughput when the receiver has everything
// (probe.Bench).
func (s *Server) Bench(req *labv1.BenchRequest, stream labv1.LiveService_BenchServer) error {
	if done, err := forwardStream(s, stream.Context(), req.Host, req, labv1.LiveServiceClient.Bench, stream.Send); done {
		return err
	}
	h, dst, err := s.liveTarget(req.Host, req.Destination, req.Ipv6)
	if err != nil {
		return err
	}
	opts := probe.BenchOptions{Destination: dst, Bytes: req.Bytes, Duration: durationOr(req.Duration, 0)}
	for ev, err := range probe.Bench(stream.Context(), h.Probe(), opts) {
		if err != nil {
			return probeError(err, codes.Aborted)
		}
		var m *labv1.BenchResponse
		switch ev := ev.(type) {
		case probe.BenchProgress:
			m = &labv1.BenchResponse{Event: &labv1.BenchResponse_Progress{Progress: &labv1.BenchProgress{
				Bytes: ev.Bytes, Elapsed: durationpb.New(ev.Elapsed),
			}}}
		case probe.BenchResult:
			m = &labv1.BenchResponse{Event: &labv1.BenchResponse_Result{Result: &labv1.BenchResult{
				Bytes: ev.Bytes, Seconds: ev.Elapsed.Seconds(), Gbps: ev.Gbps(), Retransmits: ev.Retransmits,
			}}}
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}
