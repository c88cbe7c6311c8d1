package api

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/probe"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// liveHost finds the spec and the running host for a live call.
func (s *Server) liveHost(field, name string) (*labv1.Host, LiveHost, error) {
	labID, id, ok := lab.ParseChild(name, lab.Hosts)
	if !ok {
		return nil, nil, invalid(field, "%q is not a host name (labs/{lab}/hosts/{host})", name)
	}
	spec, ok, err := lab.GetHost(s.cfg.Store, labID, id)
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "%v", err)
	}
	if !ok {
		return nil, nil, notFound("host %q not found in lab %q", id, labID)
	}
	h, ok := s.cfg.Hosts.Host(spec.Name)
	if !ok {
		if spec.Node != s.cfg.Node {
			return spec, nil, status.Errorf(codes.Unavailable, "host %s runs on node %s, which this node cannot reach", id, spec.Node)
		}
		return spec, nil, status.Errorf(codes.Unavailable, "host %s is not running yet", id)
	}
	return spec, h, nil
}

// liveTarget is the running host a probe leaves from and the address of
// its destination (request fields "host" and "destination").
func (s *Server) liveTarget(host, dest string, v6 bool) (LiveHost, netip.Addr, error) {
	_, h, err := s.liveHost("host", host)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	dst, err := s.resolve("destination", host, dest, v6)
	return h, dst, err
}

// resolve turns a destination (an address, or a host of the same lab) into
// an address. A host name gives its first IPv4 address, or its first IPv6
// address when v6 is set or it has no IPv4.
func (s *Server) resolve(field, host, dest string, v6 bool) (netip.Addr, error) {
	if a, err := netip.ParseAddr(dest); err == nil {
		if a.Zone() != "" || a.Is4In6() {
			return netip.Addr{}, invalid(field, "%q: zones and IPv4-mapped addresses are not supported", dest)
		}
		return a, nil
	}
	labID, _, _ := lab.ParseChild(host, lab.Hosts)
	id, ok := lab.ShortID(dest, labID, lab.Hosts)
	if !ok {
		return netip.Addr{}, invalid(field, "%q is neither an IP address nor a host name", dest)
	}
	h, ok, err := lab.GetHost(s.cfg.Store, labID, id)
	if err != nil {
		return netip.Addr{}, status.Errorf(codes.Internal, "%v", err)
	}
	if !ok {
		return netip.Addr{}, invalid(field, "%q is neither an IP address nor a host of lab %s", dest, labID)
	}
	var first4, first6 netip.Addr
	for _, ifc := range h.Interfaces {
		if p, err := netip.ParsePrefix(ifc.Ipv4); err == nil && !first4.IsValid() {
			first4 = p.Addr()
		}
		if p, err := netip.ParsePrefix(ifc.Ipv6); err == nil && !first6.IsValid() {
			first6 = p.Addr()
		}
	}
	switch {
	case v6 && first6.IsValid():
		return first6, nil
	case v6:
		return netip.Addr{}, invalid(field, "host %s has no IPv6 address", id)
	case first4.IsValid():
		return first4, nil
	case first6.IsValid():
		return first6, nil
	}
	return netip.Addr{}, invalid(field, "host %s has no address", id)
}

func durationOr(d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.AsDuration()
}

// probeError maps a probe's error to a status: a bad option names its
// field; otherwise the kind of failure picks the code (other for the
// rest).
func probeError(err error, other codes.Code) error {
	var oe *probe.OptionError
	switch {
	case errors.As(err, &oe):
		return invalid(oe.Option, "%s", oe.Reason)
	case errors.Is(err, probe.ErrNoRoute):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, probe.ErrNoSocket):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, probe.ErrConnect):
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(other, err.Error())
}

// positive is a request's duration, which when set must be positive
// (unset, the probe takes its default).
func positive(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if v := d.AsDuration(); v > 0 {
		return v, nil
	}
	return 0, invalid(field, "must be positive")
}

// addrString is a's text, "" when a is invalid (nobody).
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Ping sends echo requests like ping(8) (probe.Ping).
func (s *Server) Ping(req *labv1.PingRequest, stream labv1.LiveService_PingServer) error {
	if done, err := forwardStream(s, stream.Context(), req.Host, req, labv1.LiveServiceClient.Ping, stream.Send); done {
		return err
	}
	h, dst, err := s.liveTarget(req.Host, req.Destination, req.Ipv6)
	if err != nil {
		return err
	}
	opts := probe.PingOptions{Destination: dst, Count: int(req.Count), Size: int(req.Size), TTL: int(req.Ttl)}
	if opts.Interval, err = positive("interval", req.Interval); err != nil {
		return err
	}
	if opts.Timeout, err = positive("timeout", req.Timeout); err != nil {
		return err
	}
	ctx, cancel := s.untilStop(stream.Context())
	defer cancel()
	for ev, err := range probe.Ping(ctx, h.Probe(), opts) {
		if err != nil {
			return probeError(err, codes.Internal)
		}
		var m *labv1.PingResponse
		switch ev := ev.(type) {
		case probe.PingStart:
			m = &labv1.PingResponse{Event: &labv1.PingResponse_Started{Started: &labv1.PingStarted{
				Source: ev.Source.String(), Destination: ev.Destination.String(),
				Size: uint32(ev.Size), PacketSize: uint32(ev.PacketSize),
			}}}
		case probe.PingReply:
			m = &labv1.PingResponse{Event: &labv1.PingResponse_Reply{Reply: &labv1.PingReply{
				Seq: uint32(ev.Seq), From: ev.From.String(), Ttl: uint32(ev.TTL), Bytes: uint32(ev.Bytes),
				Rtt: durationpb.New(ev.RTT),
			}}}
		case probe.PingError:
			m = &labv1.PingResponse{Event: &labv1.PingResponse_Error{Error: &labv1.PingError{
				Seq: uint32(ev.Seq), From: addrString(ev.From), Message: ev.Message,
				IcmpType: uint32(ev.ICMPType), IcmpCode: uint32(ev.ICMPCode),
			}}}
		case probe.PingTimeout:
			m = &labv1.PingResponse{Event: &labv1.PingResponse_Timeout{Timeout: &labv1.PingTimeout{Seq: uint32(ev.Seq)}}}
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return shutdownCause(ctx)
}

// shutdownCause is errShuttingDown when ctx (of untilStop) ended because
// labd is shutting down; nil otherwise.
func shutdownCause(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errShuttingDown) {
		return errShuttingDown
	}
	return nil
}

// Traceroute traces the path to a destination (probe.Traceroute).
func (s *Server) Traceroute(req *labv1.TracerouteRequest, stream labv1.LiveService_TracerouteServer) error {
	if done, err := forwardStream(s, stream.Context(), req.Host, req, labv1.LiveServiceClient.Traceroute, stream.Send); done {
		return err
	}
	h, dst, err := s.liveTarget(req.Host, req.Destination, req.Ipv6)
	if err != nil {
		return err
	}
	opts := probe.TraceOptions{Destination: dst, MaxHops: int(min(req.MaxHops, 1<<16)), Probes: int(min(req.Probes, 1<<16))}
	if opts.Timeout, err = positive("timeout", req.Timeout); err != nil {
		return err
	}
	ctx, cancel := s.untilStop(stream.Context())
	defer cancel()
	for ev, err := range probe.Traceroute(ctx, h.Probe(), opts) {
		if err != nil {
			return probeError(err, codes.Internal)
		}
		var m *labv1.TracerouteResponse
		switch ev := ev.(type) {
		case probe.TraceStart:
			m = &labv1.TracerouteResponse{Event: &labv1.TracerouteResponse_Started{Started: &labv1.TracerouteStarted{
				Source: ev.Source.String(), Destination: ev.Destination.String(), MaxHops: uint32(ev.MaxHops),
			}}}
		case probe.TraceHop:
			hop := &labv1.TracerouteHop{Ttl: uint32(ev.TTL), Reached: ev.Reached}
			for _, p := range ev.Probes {
				tp := &labv1.TracerouteProbe{From: addrString(p.From), Annotation: p.Annotation}
				if p.Answered {
					tp.Rtt = durationpb.New(p.RTT)
				}
				hop.Probes = append(hop.Probes, tp)
			}
			m = &labv1.TracerouteResponse{Event: &labv1.TracerouteResponse_Hop{Hop: hop}}
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return shutdownCause(ctx)
}

// GetHostStatus reports a running host's interfaces, counters and routes.
func (s *Server) GetHostStatus(ctx context.Context, req *labv1.GetHostStatusRequest) (*labv1.GetHostStatusResponse, error) {
	if c, fctx, err := s.forward(ctx, req.Name); err != nil || c != nil {
		if err != nil {
			return nil, err
		}
		return c.GetHostStatus(fctx, req)
	}
	spec, h, err := s.liveHost("name", req.Name)
	if err != nil {
		if spec != nil && status.Code(err) == codes.Unavailable && spec.Node == s.cfg.Node {
			return &labv1.GetHostStatusResponse{Status: &labv1.HostStatus{Name: spec.Name, Node: spec.Node}}, nil
		}
		return nil, err
	}
	st := h.Status()
	out := &labv1.HostStatus{Name: spec.Name, Node: spec.Node, Running: true}
	for _, n := range st.Interfaces {
		c, ic := n.Counters, n.Impair
		is := &labv1.InterfaceStatus{
			Name: n.Name, Network: n.Network, Mtu: uint32(n.MTU),
			Counters: &labv1.InterfaceCounters{
				RxPackets: c.RxPackets, RxBytes: c.RxBytes, TxPackets: c.TxPackets, TxBytes: c.TxBytes,
				RxDropped: c.RxDropped, TxDropped: c.TxDropped,
				ImpairDropped: ic.Dropped, ImpairDuplicated: ic.Duplicated, ImpairCorrupted: ic.Corrupted,
				ImpairDelayed: ic.Delayed, ImpairReordered: ic.Reordered, QueueDropped: ic.QueueDropped,
			},
		}
		for _, a := range n.Addresses {
			is.Addresses = append(is.Addresses, a.String())
		}
		out.Interfaces = append(out.Interfaces, is)
	}
	for _, r := range st.Routes {
		rs := &labv1.RouteStatus{Destination: r.Destination.String(), Interface: r.Interface, Kind: "connected"}
		if !r.Connected() {
			rs.Via, rs.Kind = r.Via.String(), "static"
		}
		out.Routes = append(out.Routes, rs)
	}
	ip := st.IP
	out.Ip = &labv1.IPStats{
		Delivered: ip.Delivered, Forwarded: ip.Forwarded, Malformed: ip.Malformed,
		TtlExceeded: ip.TTLExceeded, NoRoute: ip.NoRoute, HostUnreachable: ip.HostUnreachable,
		NotForUs: ip.NotForUs, TooBig: ip.TooBig, IcmpSent: ip.ICMPSent,
		IcmpRateLimited: ip.ICMPRateLimited, FragmentsDropped: ip.FragmentsDropped,
		UnknownProtocol: ip.UnknownProtocol,
	}
	return &labv1.GetHostStatusResponse{Status: out}, nil
}

// --- nodes ---

func (s *Server) GetNode(ctx context.Context, req *labv1.GetNodeRequest) (*labv1.GetNodeResponse, error) {
	for _, n := range s.cfg.Members.Nodes() {
		if n.Name == req.Name {
			return &labv1.GetNodeResponse{Node: n}, nil
		}
	}
	return nil, notFound("node %q not found", req.Name)
}

func (s *Server) ListNodes(ctx context.Context, req *labv1.ListNodesRequest) (*labv1.ListNodesResponse, error) {
	page, next, err := paginate(s.cfg.Members.Nodes(), req.PageSize, req.PageToken, (*labv1.Node).GetName)
	if err != nil {
		return nil, err
	}
	return &labv1.ListNodesResponse{Nodes: page, NextPageToken: next}, nil
}
