package fabric

import (
	"net/netip"
	"sync/atomic"
)

// ownerShards is how many pieces a segment's owner map is cut into.
const ownerShards = 256

// owners maps each address of a segment to the local port that owns it.
// It is read on every packet, without a lock, and written when interfaces
// attach and detach: copy-on-write, cut into shards by the address's last
// byte, so that a change copies one shard (about n/256 entries) rather than
// the whole map. With whole-map copies, attaching the hosts of a large lab
// one by one was quadratic: 100,000 hosts on 200 networks copied 25 million
// entries and left a gigabyte of garbage.
type owners struct {
	shards [ownerShards]atomic.Pointer[map[netip.Addr]*Port] // nil: empty
}

func shardOf(a netip.Addr) int { return int(a.As16()[15]) }

// shard returns the current map of a's shard (nil when empty): a snapshot
// that is never changed, so a hopCache entry found in it is good while the
// shard still holds it.
func (o *owners) shard(a netip.Addr) *map[netip.Addr]*Port {
	return o.shards[shardOf(a)].Load()
}

// get returns the port that owns a, or nil.
func (o *owners) get(a netip.Addr) *Port {
	if m := o.shard(a); m != nil {
		return (*m)[a]
	}
	return nil
}

// set makes p the owner of a; nil removes a's owner. The caller serialises
// writers (Segment.mu).
func (o *owners) set(a netip.Addr, p *Port) {
	sh := &o.shards[shardOf(a)]
	var old map[netip.Addr]*Port
	if m := sh.Load(); m != nil {
		old = *m
	}
	next := make(map[netip.Addr]*Port, len(old)+1)
	for k, v := range old {
		if k != a {
			next[k] = v
		}
	}
	if p != nil {
		next[a] = p
	}
	if len(next) == 0 {
		sh.Store(nil)
		return
	}
	sh.Store(&next)
}
