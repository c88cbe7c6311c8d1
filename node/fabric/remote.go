package fabric

import (
	"errors"
	"net/netip"
	"sync/atomic"

	"github.com/labnet-dev/labnet/stack"
)

// Remote carries a packet to another labd: the one whose interface owns
// nextHop on the network with this VNI (the overlay). SendRemote returns
// nil once the packet is on its way (queued for that node) and then owns
// pkt. Otherwise it keeps nothing and returns an error wrapping one of
// ErrRemoteQueueFull, ErrRemoteNoRoute, ErrRemoteTooBig or ErrRemoteDown:
// the fabric reports it as the packet's fate at the sending interface (a
// drop with that reason, which the interface counts and captures show).
// It must not block: it runs on the sender's packet path.
type Remote interface {
	SendRemote(peer netip.AddrPort, vni uint32, nextHop netip.Addr, pkt []byte) error
}

// The reasons a Remote refuses a packet.
var (
	ErrRemoteQueueFull = errors.New("overlay send queue full")
	ErrRemoteNoRoute   = errors.New("no overlay route to the node")
	ErrRemoteTooBig    = errors.New("packet too big for the overlay")
	ErrRemoteDown      = errors.New("overlay down")
)

// remoteDrop is the drop reason of a Remote's error; an error that names
// none of the reasons is one the overlay could not route.
func remoteDrop(err error) stack.Drop {
	switch {
	case err == nil:
		return stack.DropNone
	case errors.Is(err, ErrRemoteQueueFull):
		return stack.DropOverlayQueueFull
	case errors.Is(err, ErrRemoteTooBig):
		return stack.DropOverlayTooBig
	case errors.Is(err, ErrRemoteDown):
		return stack.DropOverlayDown
	default:
		return stack.DropNoNodeRoute
	}
}

// SetRemote sets the overlay that carries packets to other labd nodes.
func (f *Fabric) SetRemote(r Remote) { f.remote.Store(&r) }

// refusals count, for one port, the packets the overlay refused when the
// port sent them (the fate its interface saw).
type refusals struct {
	queueFull, noRoute, tooBig, down atomic.Uint64
}

func (r *refusals) count(d stack.Drop) {
	switch d {
	case stack.DropOverlayQueueFull:
		r.queueFull.Add(1)
	case stack.DropNoNodeRoute:
		r.noRoute.Add(1)
	case stack.DropOverlayTooBig:
		r.tooBig.Add(1)
	case stack.DropOverlayDown:
		r.down.Add(1)
	}
}

// deliver hands a packet to whoever owns its next hop now (the owner may
// have gone while the packet was held): a port of this labd or, through
// the Remote, another labd. It returns why the packet went nowhere,
// DropNone when it went; in either case pkt is no longer the caller's.
func (p *Port) deliver(nextHop netip.Addr, pkt []byte) stack.Drop {
	seg := p.seg
	dst, peer, ok := p.hops.where(seg, nextHop)
	if dst != nil {
		seg.delivered.Add(1)
		dst.recv(pkt)
		return stack.DropNone
	}
	if !ok {
		seg.noOwner.Add(1)
		return stack.DropHostUnreachable
	}
	r := p.f.remote.Load()
	if r == nil {
		seg.noRemote.Add(1)
		return stack.DropNoNodeRoute
	}
	if err := (*r).SendRemote(peer, seg.vni.Load(), nextHop, pkt); err != nil {
		seg.remoteRefused.Add(1)
		return remoteDrop(err)
	}
	seg.sentRemote.Add(1)
	return stack.DropNone
}
