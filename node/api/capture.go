package api

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/format/capture"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/probe"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Capture tuning.
const (
	// captureBuffer is how many packets a capture holds between the taps
	// and the stream; beyond it packets are lost to the capture (counted),
	// never held up in the lab.
	captureBuffer = 8192
	// captureWindow is how long packets wait so that those from several
	// interfaces (and nodes) go out in time order.
	captureWindowLocal = 20 * time.Millisecond
	// captureBatch is the most packets sent in one message.
	captureBatch        = 512
	captureWindowRemote = 200 * time.Millisecond
)

type captureServer struct {
	labv1.UnimplementedCaptureServiceServer
	s *Server
}

// captureIface is one interface to capture and who runs it.
type captureIface struct {
	info *labv1.CaptureInterface
	host string // short id
	nic  string
	// viaNet: only a net/NETWORK target named it, so a capture that
	// cannot reach it reports it and goes on.
	viaNet bool
}

// Capture implements CaptureService.Capture.
func (c *captureServer) Capture(req *labv1.CaptureRequest, stream labv1.CaptureService_CaptureServer) error {
	s := c.s
	filter, err := captureFilter(req)
	if err != nil {
		return err
	}
	ifaces, err := s.captureTargets(req)
	if err != nil {
		return err
	}
	if req.Duration != nil && req.Duration.AsDuration() <= 0 {
		return invalid("duration", "must be positive")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	// Peers' streams end when ctx does; wait for their relays after that,
	// whichever way the call ends.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if req.Duration != nil {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, req.Duration.AsDuration())
		defer cancelTimeout()
	}
	forwarded := false
	if md, ok := metadata.FromIncomingContext(stream.Context()); ok && len(md.Get(forwardedKey)) > 0 {
		forwarded = true
	}

	// Group the interfaces by node.
	byNode := map[string][]captureIface{}
	for _, ci := range ifaces {
		node := ci.info.Node
		if node == "" || s.cfg.Peer == nil {
			node = s.cfg.Node
		}
		byNode[node] = append(byNode[node], ci)
	}
	sink := newCaptureSink(req.Snaplen)
	var taps []*localTap
	defer func() {
		for _, t := range taps {
			t.remove()
		}
	}()
	for _, ci := range byNode[s.cfg.Node] {
		t, err := s.tapLocal(ci, filter, sink)
		if err != nil {
			return err
		}
		taps = append(taps, t)
	}
	if forwarded {
		for node, list := range byNode {
			if node != s.cfg.Node {
				return status.Errorf(codes.Unavailable, "host %s runs on node %s, not here (the call was already forwarded)", list[0].host, node)
			}
		}
	}
	// Peers: a node that cannot be reached fails the capture when the
	// caller named one of its hosts; when only a network did, its
	// interfaces are reported as not captured and the capture goes on.
	remotes := s.startRemotes(ctx, req, byNode)
	notCaptured := map[string]bool{}
	var unreachable []*labv1.UnreachableInterface
	for _, r := range remotes {
		if r.err != nil && r.explicit() {
			return r.err
		}
		if r.err != nil || r.away != "" {
			for _, u := range r.unreachable() {
				notCaptured[u.Name] = true
				unreachable = append(unreachable, u)
			}
		}
	}
	if len(unreachable) > 0 && len(unreachable) == len(ifaces) {
		return status.Errorf(codes.Unavailable, "no interface could be captured: %s", describeUnreachable(unreachable))
	}
	remote := false
	remoteErr := make(chan error, len(remotes))
	for _, r := range remotes {
		if r.rs == nil {
			continue
		}
		remote = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			remoteErr <- sink.relay(r.rs)
		}()
	}

	started := &labv1.CaptureStarted{Unreachable: unreachable}
	for _, ci := range ifaces {
		if !notCaptured[ci.info.Name] {
			started.Interfaces = append(started.Interfaces, ci.info)
		}
	}
	if err := stream.Send(&labv1.CaptureResponse{Event: &labv1.CaptureResponse_Started{Started: started}}); err != nil {
		return err
	}
	window := captureWindowLocal
	if remote {
		window = captureWindowRemote
	}
	follow := func() {
		for _, t := range taps {
			s.follow(t, filter, sink)
		}
	}
	return sink.run(ctx, stream, window, uint64(req.Count), remoteErr, s.stopping, follow)
}

// captureFilter checks the request's filter fields.
func captureFilter(req *labv1.CaptureRequest) (capture.Filter, error) {
	var f capture.Filter
	var v violations
	if _, ok := lab.ParseLabName(req.Lab); !ok {
		v.add("lab", "%q is not a lab name (labs/{lab})", req.Lab)
	}
	if len(req.Targets) == 0 {
		v.add("targets", "name at least one host, host:interface or net/network")
	}
	p, err := capture.ParseProto(req.Protocol)
	if err != nil {
		v.add("protocol", "%v", err)
	}
	f.Proto = p
	if req.Port > 65535 {
		v.add("port", "%d is not a port", req.Port)
	}
	f.Port = uint16(req.Port)
	if req.Address != "" {
		a, err := netip.ParseAddr(req.Address)
		if err != nil {
			v.add("address", "%q is not an IP address", req.Address)
		}
		f.Host = a
	}
	return f, v.err()
}

// captureTargets resolves the targets to interfaces (each once).
func (s *Server) captureTargets(req *labv1.CaptureRequest) ([]captureIface, error) {
	labID, _ := lab.ParseLabName(req.Lab) // checked by captureFilter
	st, err := lab.Load(s.cfg.Store, labID)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if st.Lab == nil {
		return nil, notFound("lab %q not found", labID)
	}
	var out []captureIface
	seen := map[string]int{} // name -> index in out
	add := func(hostID string, h *labv1.Host, ifc *labv1.Interface, viaNet bool) {
		name := hostID + ":" + ifc.Name
		if i, ok := seen[name]; ok {
			out[i].viaNet = out[i].viaNet && viaNet
			return
		}
		seen[name] = len(out)
		info := &labv1.CaptureInterface{Name: name, Host: lab.HostName(labID, hostID), Network: lab.NetworkName(labID, ifc.Network), Node: h.Node}
		for _, a := range []string{ifc.Ipv4, ifc.Ipv6} {
			if p, err := netip.ParsePrefix(a); err == nil {
				info.Addresses = append(info.Addresses, p.Addr().String())
			} else if a, err := netip.ParseAddr(a); err == nil {
				info.Addresses = append(info.Addresses, a.String())
			}
		}
		out = append(out, captureIface{info: info, host: hostID, nic: ifc.Name, viaNet: viaNet})
	}
	for i, t := range req.Targets {
		field := fmt.Sprintf("targets[%d]", i)
		if netID, ok := strings.CutPrefix(t, "net/"); ok {
			if st.Networks[netID] == nil {
				return nil, notFound("network %q not found in lab %q", netID, labID)
			}
			for _, id := range lab.SortedKeys(st.Hosts) {
				for _, ifc := range st.Hosts[id].Interfaces {
					if ifc.Network == netID {
						add(id, st.Hosts[id], ifc, true)
					}
				}
			}
			continue
		}
		hostID, nic, hasNIC := strings.Cut(t, ":")
		if !lab.ValidID(hostID) {
			return nil, invalid(field, "%q: want HOST, HOST:IFACE or net/NETWORK", t)
		}
		h := st.Hosts[hostID]
		if h == nil {
			return nil, notFound("host %q not found in lab %q", hostID, labID)
		}
		found := false
		for _, ifc := range h.Interfaces {
			if !hasNIC || ifc.Name == nic {
				add(hostID, h, ifc, false)
				found = true
			}
		}
		if !found {
			return nil, notFound("host %q has no interface %q", hostID, nic)
		}
	}
	return out, nil
}

// localTap is a tapped interface of a host running here.
type localTap struct {
	ci     captureIface
	host   LiveHost // the running host when tapped
	remove func()
}

// follow taps t's interface again when its host runs anew (a changed spec
// restarts a host), so that a capture outlives the restart.
func (s *Server) follow(t *localTap, f capture.Filter, sink *captureSink) {
	h, ok := s.cfg.Hosts.Host(t.ci.info.Host)
	if !ok || h == t.host {
		return // the same host, or not running again yet
	}
	nt, err := s.tapLocal(t.ci, f, sink)
	if err != nil {
		return
	}
	t.remove()
	*t = *nt
}

// tapLocal taps one interface of a host running here into sink.
func (s *Server) tapLocal(ci captureIface, f capture.Filter, sink *captureSink) (*localTap, error) {
	h, ok := s.cfg.Hosts.Host(ci.info.Host)
	if !ok {
		return nil, status.Errorf(codes.Unavailable, "host %s is not running yet", ci.host)
	}
	var want func([]byte) bool
	if !f.All() {
		want = f.Match // decided before the packet is copied
	}
	remove, err := h.Tap(ci.nic, ci.info.Name, want, sink.push)
	switch {
	case errors.Is(err, probe.ErrNoInterface):
		return nil, status.Errorf(codes.Unavailable, "host %s has no running interface %s", ci.host, ci.nic)
	case err != nil:
		return nil, status.Errorf(codes.ResourceExhausted, "%v", err)
	}
	return &localTap{ci: ci, host: h, remove: remove}, nil
}

// captureSink gathers packets from taps and peers, and sends them in time
// order.
type captureSink struct {
	ch      chan *capture.Packet
	snaplen int
	lost    atomic.Uint64 // here, plus what peers last reported

	mu    sync.Mutex
	peers map[any]uint64 // each peer's last reported loss
}

// peerLost adds to lost what a peer lost since it last reported.
func (k *captureSink) peerLost(peer any, total uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.peers == nil {
		k.peers = map[any]uint64{}
	}
	if total > k.peers[peer] {
		k.lost.Add(total - k.peers[peer])
		k.peers[peer] = total
	}
}

func newCaptureSink(snaplen uint32) *captureSink {
	return &captureSink{ch: make(chan *capture.Packet, captureBuffer), snaplen: int(snaplen)}
}

// push never blocks: a full buffer loses the packet to the capture only.
func (k *captureSink) push(p *capture.Packet) {
	select {
	case k.ch <- p:
	default:
		k.lost.Add(1)
	}
}

// relay feeds a peer's capture stream into the sink.
func (k *captureSink) relay(rs labv1.CaptureService_CaptureClient) error {
	for {
		m, err := rs.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled || status.Code(err) == codes.DeadlineExceeded {
				return nil
			}
			return err
		}
		switch ev := m.Event.(type) {
		case *labv1.CaptureResponse_Packets:
			for _, m := range ev.Packets.Packets {
				p := capture.FromProto(m)
				k.push(&p)
			}
		case *labv1.CaptureResponse_Stats:
			k.peerLost(rs, ev.Stats.Lost)
		}
	}
}

// packetHeap orders held packets by time, then Seq.
type packetHeap []*capture.Packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if c := h[i].Time.Compare(h[j].Time); c != 0 {
		return c < 0
	}
	return h[i].Seq < h[j].Seq
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*capture.Packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

// run sends packets once they are window old, in time order, with stats
// (and a call of everySecond) every second, until ctx ends (duration, or
// the client went), count packets were sent, or a peer's stream failed.
func (k *captureSink) run(ctx context.Context, stream labv1.CaptureService_CaptureServer, window time.Duration, count uint64, remoteErr <-chan error, stopping <-chan struct{}, everySecond func()) error {
	var held packetHeap
	var sent uint64
	tick := time.NewTicker(window / 2)
	defer tick.Stop()
	statsEvery := time.NewTicker(time.Second)
	defer statsEvery.Stop()
	sendStats := func(done bool) error {
		return stream.Send(&labv1.CaptureResponse{Event: &labv1.CaptureResponse_Stats{Stats: &labv1.CaptureStats{Packets: sent, Lost: k.lost.Load(), Done: done}}})
	}
	// flush sends the packets that are due (all of them with all) in
	// batches of up to captureBatch packets or about 1 MB.
	flush := func(all bool) (bool, error) {
		cut := time.Now().Add(-window)
		for held.Len() > 0 && (all || !held[0].Time.After(cut)) {
			batch := &labv1.CapturedPackets{Packets: make([]*labv1.CapturedPacket, 0, min(held.Len(), captureBatch))}
			size := 0
			for held.Len() > 0 && (all || !held[0].Time.After(cut)) && len(batch.Packets) < captureBatch && size < 1<<20 {
				p := heap.Pop(&held).(*capture.Packet)
				if k.snaplen > 0 && len(p.Data) > k.snaplen {
					p.Data = p.Data[:k.snaplen]
				}
				batch.Packets = append(batch.Packets, capture.ToProto(p))
				size += len(p.Data)
				if count > 0 && sent+uint64(len(batch.Packets)) >= count {
					break
				}
			}
			if err := stream.Send(&labv1.CaptureResponse{Event: &labv1.CaptureResponse_Packets{Packets: batch}}); err != nil {
				return true, err
			}
			sent += uint64(len(batch.Packets))
			if count > 0 && sent >= count {
				return true, sendStats(true)
			}
		}
		return false, nil
	}
	for {
		select {
		case p := <-k.ch:
			heap.Push(&held, p)
			if held.Len() > captureBuffer {
				// Time order costs memory only up to a point.
				if done, err := flush(true); done {
					return err
				}
			}
		case <-tick.C:
			if done, err := flush(false); done {
				return err
			}
		case <-statsEvery.C:
			everySecond()
			if err := sendStats(false); err != nil {
				return err
			}
		case err := <-remoteErr:
			if err != nil {
				return err
			}
		case <-stopping:
			return status.Error(codes.Unavailable, "labd is shutting down")
		case <-ctx.Done():
			if stream.Context().Err() != nil {
				return nil // the client hung up
			}
			// The duration is over: send what was captured, then the end.
		drain:
			for {
				select {
				case p := <-k.ch:
					heap.Push(&held, p)
				default:
					break drain
				}
			}
			if done, err := flush(true); done {
				return err
			}
			return sendStats(true)
		}
	}
}
