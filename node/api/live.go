package api

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// liveHost finds the spec and the running host for a live call.
func (s *Server) liveHost(field, name string) (*labv1.Host, LiveHost, error) {
	lab, id, ok := parseChild(name, "hosts")
	if !ok {
		return nil, nil, invalid(field, "%q is not a host name (labs/{lab}/hosts/{host})", name)
	}
	rec, ok := s.cfg.Store.Get(hostName(lab, id))
	if !ok {
		return nil, nil, notFound("host %q not found in lab %q", id, lab)
	}
	spec := &labv1.Host{}
	if err := proto.Unmarshal(rec.Value, spec); err != nil {
		return nil, nil, status.Errorf(codes.Internal, "record %s: %v", rec.Key, err)
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
	lab, _, _ := parseChild(host, "hosts")
	id, ok := shortID(dest, lab, "hosts")
	if !ok {
		return netip.Addr{}, invalid(field, "%q is neither an IP address nor a host name", dest)
	}
	rec, ok := s.cfg.Store.Get(hostName(lab, id))
	if !ok {
		return netip.Addr{}, invalid(field, "%q is neither an IP address nor a host of lab %s", dest, lab)
	}
	h := &labv1.Host{}
	if err := proto.Unmarshal(rec.Value, h); err != nil {
		return netip.Addr{}, status.Errorf(codes.Internal, "record %s: %v", rec.Key, err)
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

// probe is an echo request waiting for its answer.
type probe struct {
	sent     time.Time
	deadline time.Time
}

// Ping sends echo requests like ping(8).
func (s *Server) Ping(req *labv1.PingRequest, stream labv1.LiveService_PingServer) error {
	if done, err := forwardStream(s, stream.Context(), req.Host, req, labv1.LiveServiceClient.Ping, stream.Send); done {
		return err
	}
	h, dst, err := s.liveTarget(req.Host, req.Destination, req.Ipv6)
	if err != nil {
		return err
	}
	interval := durationOr(req.Interval, time.Second)
	timeout := durationOr(req.Timeout, time.Second)
	size := req.Size
	if req.Size == 0 {
		size = 56
	}
	ttl := req.Ttl
	if ttl == 0 {
		ttl = 64
	}
	switch {
	case req.Count < 0:
		return invalid("count", "must not be negative")
	case interval < 10*time.Millisecond:
		return invalid("interval", "%v is below the minimum of 10ms", interval)
	case timeout <= 0:
		return invalid("timeout", "must be positive")
	case ttl > 255:
		return invalid("ttl", "%d is above 255", ttl)
	case size > 65000:
		return invalid("size", "%d is above 65000", size)
	}
	st := h.Stack()
	src, err := st.SourceAddr(dst)
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "connect: %v", err)
	}
	ep, err := st.OpenEcho(dst.Is6())
	if err != nil {
		return status.Errorf(codes.ResourceExhausted, "%v", err)
	}
	defer ep.Close()
	ipHeader := wire.IPv4MinHeaderLen
	if dst.Is6() {
		ipHeader = wire.IPv6HeaderLen
	}
	if err := stream.Send(&labv1.PingResponse{Event: &labv1.PingResponse_Started{Started: &labv1.PingStarted{
		Source: src.String(), Destination: dst.String(), Size: size,
		PacketSize: size + wire.ICMPHeaderLen + uint32(ipHeader),
	}}}); err != nil {
		return err
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	ctx := stream.Context()
	pending := map[uint16]probe{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	check := time.NewTicker(10 * time.Millisecond)
	defer check.Stop()
	sent := int32(0)
	send := func() error {
		sent++
		seq := uint16(sent)
		now := time.Now()
		if _, err := ep.Send(dst, seq, uint8(ttl), payload); err != nil {
			return stream.Send(&labv1.PingResponse{Event: &labv1.PingResponse_Error{Error: &labv1.PingError{
				Seq: uint32(seq), Message: localError(err),
			}}})
		}
		pending[seq] = probe{sent: now, deadline: now.Add(timeout)}
		return nil
	}
	if err := send(); err != nil {
		return err
	}
	for {
		if req.Count > 0 && sent >= req.Count && len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			return status.Error(codes.Unavailable, "labd is shutting down")
		case <-tick.C:
			if req.Count == 0 || sent < req.Count {
				if err := send(); err != nil {
					return err
				}
			}
		case <-check.C:
			now := time.Now()
			for seq, p := range pending {
				if now.After(p.deadline) {
					delete(pending, seq)
					if err := stream.Send(&labv1.PingResponse{Event: &labv1.PingResponse_Timeout{Timeout: &labv1.PingTimeout{Seq: uint32(seq)}}}); err != nil {
						return err
					}
				}
			}
		case ev, ok := <-ep.Events():
			if !ok {
				return nil
			}
			p, waiting := pending[ev.Seq]
			if !waiting {
				continue // a duplicate, or too late
			}
			delete(pending, ev.Seq)
			var resp *labv1.PingResponse
			if ev.Reply {
				resp = &labv1.PingResponse{Event: &labv1.PingResponse_Reply{Reply: &labv1.PingReply{
					Seq: uint32(ev.Seq), From: ev.From.String(), Ttl: uint32(ev.TTL), Bytes: uint32(ev.Len),
					Rtt: durationpb.New(ev.At.Sub(p.sent)),
				}}}
			} else {
				resp = &labv1.PingResponse{Event: &labv1.PingResponse_Error{Error: &labv1.PingError{
					Seq: uint32(ev.Seq), From: ev.From.String(), Message: icmpMessage(ev),
					IcmpType: uint32(ev.Type), IcmpCode: uint32(ev.Code),
				}}}
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
	}
}

// localError words a send error as ping(8) does.
func localError(err error) string {
	switch {
	case errors.Is(err, stack.ErrHostUnreachable):
		return "Destination Host Unreachable"
	case errors.Is(err, stack.ErrNoRoute):
		return "Network is unreachable"
	case errors.Is(err, stack.ErrMessageTooLong):
		return "Message too long"
	}
	return err.Error()
}

// icmpWords is how ping(8) and traceroute(8) word an ICMP error: ping's
// message and traceroute's annotation ("" for an error that is not an
// unreachable, such as time exceeded).
type icmpWords struct{ message, mark string }

type icmpKind struct {
	v6        bool
	typ, code uint8
}

// icmpTable covers the errors routers in the lab send (RFC 792, RFC 4443),
// worded as iputils does.
var icmpTable = map[icmpKind]icmpWords{
	{false, wire.ICMPv4DestUnreach, wire.ICMPv4NetUnreach}:      {"Destination Net Unreachable", "!N"},
	{false, wire.ICMPv4DestUnreach, wire.ICMPv4HostUnreach}:     {"Destination Host Unreachable", "!H"},
	{false, wire.ICMPv4DestUnreach, wire.ICMPv4ProtoUnreach}:    {"Destination Protocol Unreachable", "!P"},
	{false, wire.ICMPv4DestUnreach, wire.ICMPv4PortUnreach}:     {"Destination Port Unreachable", ""},
	{false, wire.ICMPv4DestUnreach, wire.ICMPv4AdminProhib}:     {"Packet filtered", "!X"},
	{false, wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded}:    {"Time to live exceeded", ""},
	{false, wire.ICMPv4TimeExceeded, wire.ICMPv4ReassemblyTime}: {"Frag reassembly time exceeded", ""},
	{true, wire.ICMPv6DestUnreach, wire.ICMPv6NoRoute}:          {"Destination unreachable: No route", "!N"},
	{true, wire.ICMPv6DestUnreach, wire.ICMPv6AdminProhib}:      {"Destination unreachable: Administratively prohibited", "!X"},
	{true, wire.ICMPv6DestUnreach, wire.ICMPv6AddrUnreach}:      {"Destination unreachable: Address unreachable", "!H"},
	{true, wire.ICMPv6DestUnreach, wire.ICMPv6PortUnreach}:      {"Destination unreachable: Port unreachable", ""},
	{true, wire.ICMPv6TimeExceeded, wire.ICMPv6HopLimitExceed}:  {"Time exceeded: Hop limit", ""},
	{true, wire.ICMPv6TimeExceeded, 1}:                          {"Time exceeded: Defragmentation failure", ""},
}

// words looks an error up; the messages that carry a value (an MTU) or
// name an unknown code are built here.
func words(ev stack.EchoEvent) icmpWords {
	v6 := !ev.From.Is4()
	if w, ok := icmpTable[icmpKind{v6, ev.Type, ev.Code}]; ok {
		return w
	}
	switch {
	case !v6 && ev.Type == wire.ICMPv4DestUnreach && ev.Code == wire.ICMPv4FragNeeded:
		return icmpWords{fmt.Sprintf("Frag needed and DF set (mtu = %d)", ev.MTU), fmt.Sprintf("!F-%d", ev.MTU)}
	case v6 && ev.Type == wire.ICMPv6PacketTooBig:
		return icmpWords{fmt.Sprintf("Packet too big: mtu=%d", ev.MTU), fmt.Sprintf("!F-%d", ev.MTU)}
	case !v6 && ev.Type == wire.ICMPv4DestUnreach:
		return icmpWords{fmt.Sprintf("Dest Unreachable, Bad Code: %d", ev.Code), fmt.Sprintf("!<%d>", ev.Code)}
	case v6 && ev.Type == wire.ICMPv6DestUnreach:
		return icmpWords{fmt.Sprintf("Destination unreachable: Unknown code %d", ev.Code), fmt.Sprintf("!<%d>", ev.Code)}
	case !v6 && ev.Type == wire.ICMPv4TimeExceeded:
		return icmpWords{"Time to live exceeded", ""}
	case !v6 && ev.Type == wire.ICMPv4ParamProblem, v6 && ev.Type == wire.ICMPv6ParamProblem:
		return icmpWords{"Parameter problem", ""}
	case v6:
		return icmpWords{fmt.Sprintf("Unknown ICMPv6 type: %d", ev.Type), ""}
	}
	return icmpWords{fmt.Sprintf("Bad ICMP type: %d", ev.Type), ""}
}

// icmpMessage words an ICMP error as iputils ping does.
func icmpMessage(ev stack.EchoEvent) string { return words(ev).message }

// annotation is traceroute(8)'s mark for an unreachable answer.
func annotation(ev stack.EchoEvent) string {
	if ev.Reply {
		return ""
	}
	return words(ev).mark
}

// Traceroute sends echo requests with TTL 1, 2, ... (traceroute -I): each
// hop's probes go out together and the hop ends when all are answered or
// the timeout passes. It stops at the destination, or at a hop whose every
// answer says unreachable.
func (s *Server) Traceroute(req *labv1.TracerouteRequest, stream labv1.LiveService_TracerouteServer) error {
	if done, err := forwardStream(s, stream.Context(), req.Host, req, labv1.LiveServiceClient.Traceroute, stream.Send); done {
		return err
	}
	h, dst, err := s.liveTarget(req.Host, req.Destination, req.Ipv6)
	if err != nil {
		return err
	}
	maxHops, probes := req.MaxHops, req.Probes
	if maxHops == 0 {
		maxHops = 30
	}
	if probes == 0 {
		probes = 3
	}
	timeout := durationOr(req.Timeout, time.Second)
	switch {
	case maxHops > 255:
		return invalid("max_hops", "%d is above 255", maxHops)
	case probes > 10:
		return invalid("probes", "%d is above 10", probes)
	case timeout <= 0:
		return invalid("timeout", "must be positive")
	}
	st := h.Stack()
	src, err := st.SourceAddr(dst)
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "connect: %v", err)
	}
	ep, err := st.OpenEcho(dst.Is6())
	if err != nil {
		return status.Errorf(codes.ResourceExhausted, "%v", err)
	}
	defer ep.Close()
	if err := stream.Send(&labv1.TracerouteResponse{Event: &labv1.TracerouteResponse_Started{Started: &labv1.TracerouteStarted{
		Source: src.String(), Destination: dst.String(), MaxHops: maxHops,
	}}}); err != nil {
		return err
	}
	ctx := stream.Context()
	payload := make([]byte, 32)
	seq := uint16(0)
	for ttl := uint32(1); ttl <= maxHops; ttl++ {
		hop := &labv1.TracerouteHop{Ttl: ttl, Probes: make([]*labv1.TracerouteProbe, probes)}
		first := seq + 1
		sentAt := make([]time.Time, probes)
		answered, unreachable := 0, 0
		for i := range probes {
			seq++
			sentAt[i] = time.Now()
			hop.Probes[i] = &labv1.TracerouteProbe{}
			if _, err := ep.Send(dst, seq, uint8(ttl), payload); err != nil {
				// Our own next hop is unreachable: the sender says so, as
				// Linux reports a failed neighbour lookup.
				hop.Probes[i].From = src.String()
				hop.Probes[i].Annotation = "!H"
				if errors.Is(err, stack.ErrMessageTooLong) {
					hop.Probes[i].Annotation = "!F"
				}
				answered++
				unreachable++
			}
		}
		deadline := time.NewTimer(timeout)
	wait:
		for answered < int(probes) {
			select {
			case <-ctx.Done():
				deadline.Stop()
				return nil
			case <-s.stopping:
				deadline.Stop()
				return status.Error(codes.Unavailable, "labd is shutting down")
			case <-deadline.C:
				break wait
			case ev, ok := <-ep.Events():
				if !ok {
					return nil
				}
				i := int(ev.Seq - first)
				if i < 0 || i >= int(probes) || hop.Probes[i].From != "" {
					continue // an answer to an earlier hop's probe
				}
				p := hop.Probes[i]
				p.From = ev.From.String()
				p.Rtt = durationpb.New(ev.At.Sub(sentAt[i]))
				p.Annotation = annotation(ev)
				answered++
				if ev.From == dst {
					hop.Reached = true
				}
				if p.Annotation != "" {
					unreachable++
				}
			}
		}
		deadline.Stop()
		if err := stream.Send(&labv1.TracerouteResponse{Event: &labv1.TracerouteResponse_Hop{Hop: hop}}); err != nil {
			return err
		}
		if hop.Reached || (unreachable > 0 && unreachable == answered) {
			return nil
		}
	}
	return nil
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
	st := h.Stack()
	nets := h.Networks()
	out := &labv1.HostStatus{Name: spec.Name, Node: spec.Node, Running: true}
	for _, n := range st.Interfaces() {
		c := n.Counters()
		ic := h.ImpairCounters(n.Name())
		is := &labv1.InterfaceStatus{
			Name: n.Name(), Network: nets[n.Name()], Mtu: uint32(n.MTU()),
			Counters: &labv1.InterfaceCounters{
				RxPackets: c.RxPackets, RxBytes: c.RxBytes, TxPackets: c.TxPackets, TxBytes: c.TxBytes,
				RxDropped: c.RxDropped, TxDropped: c.TxDropped,
				ImpairDropped: ic.Dropped, ImpairDuplicated: ic.Duplicated, ImpairCorrupted: ic.Corrupted,
				ImpairDelayed: ic.Delayed, ImpairReordered: ic.Reordered, QueueDropped: ic.QueueDropped,
			},
		}
		for _, a := range n.Addresses() {
			is.Addresses = append(is.Addresses, a.String())
		}
		out.Interfaces = append(out.Interfaces, is)
	}
	for _, r := range st.Routes() {
		rs := &labv1.RouteStatus{Destination: r.Dst.String(), Interface: r.NIC.Name(), Kind: "connected"}
		if !r.Connected() {
			rs.Via, rs.Kind = r.Via.String(), "static"
		}
		out.Routes = append(out.Routes, rs)
	}
	ip := st.Stats()
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
