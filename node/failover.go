package node

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// failover places again the hosts of nodes that have been gone (dead, or
// left) for longer than after, on the least-loaded live nodes, and brings
// them back to their home node once it has been alive again for as long
// (unless failback is off). Hosts that are pinned (the topology named
// their node) or opt out (no_failover) never move.
//
// Only one node decides: the Raft leader (isLeader), so that two nodes
// never move the same host at once and a node cut off from the majority
// decides nothing. Without isLeader (a single node, tests) the live node
// first by name decides. Every move is its own conditional
// read-modify-write of the one host record (lab.MoveHost), so a change
// made to the host since the decision is kept.
type failover struct {
	cl       *cluster.Cluster
	st       *store.Store
	self     string
	after    time.Duration
	failback bool
	// isLeader reports whether this node decides; nil: the live node
	// first by name decides.
	isLeader func() bool
	// update writes through the control plane (control.Control.Update:
	// the transaction's reads are the write's conditions); nil: st.Update.
	update func(ctx context.Context, fn func(*store.Tx) error) (uint64, error)
	log    *slog.Logger

	gone  map[string]time.Time // node -> when this node first saw it gone
	alive map[string]time.Time // node -> since when it has been alive without a break
}

func (f *failover) run(ctx context.Context) error {
	t := time.NewTicker(max(f.after/4, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f.check(ctx, time.Now())
		}
	}
}

// view is what failover knows of the nodes at one moment.
type view struct {
	alive   []string        // alive now, sorted
	expired map[string]bool // gone for at least the failover time
	settled map[string]bool // alive without a break for at least the failover time
	removed map[string]bool // removed (labctl node remove): gone for good
}

// observe updates the nodes' gone and alive times from membership.
func (f *failover) observe(members []cluster.Member, now time.Time) view {
	if f.gone == nil {
		f.gone = map[string]time.Time{}
	}
	if f.alive == nil {
		f.alive = map[string]time.Time{}
	}
	v := view{expired: map[string]bool{}, settled: map[string]bool{}}
	listed := map[string]bool{}
	for _, m := range members {
		listed[m.Name] = true
		switch m.State {
		case cluster.StateAlive:
			delete(f.gone, m.Name)
			if _, ok := f.alive[m.Name]; !ok {
				f.alive[m.Name] = now
			}
			v.alive = append(v.alive, m.Name)
		case cluster.StateSuspect:
			// Neither gone nor settled: wait and see.
			delete(f.gone, m.Name)
			delete(f.alive, m.Name)
		default:
			delete(f.alive, m.Name)
			if _, ok := f.gone[m.Name]; !ok {
				f.gone[m.Name] = now
			}
		}
	}
	for n := range f.alive {
		if !listed[n] {
			delete(f.alive, n) // forgotten: it settles anew if it comes back
		}
	}
	sort.Strings(v.alive)
	for n, since := range f.gone {
		if now.Sub(since) >= f.after {
			v.expired[n] = true
		}
	}
	for n, since := range f.alive {
		if now.Sub(since) >= f.after {
			v.settled[n] = true
		}
	}
	return v
}

// withoutRemoved is v with the removed nodes (labctl node remove) gone
// at once, however alive gossip shows them: their movable hosts are
// placed elsewhere without waiting for the failover time, and none comes
// back to them.
func (v view) withoutRemoved(ids []lab.NodeIdentity) view {
	for _, id := range ids {
		if !id.Removed {
			continue
		}
		v.alive = slices.DeleteFunc(v.alive, func(n string) bool { return n == id.Name })
		delete(v.settled, id.Name)
		v.expired[id.Name] = true
		if v.removed == nil {
			v.removed = map[string]bool{}
		}
		v.removed[id.Name] = true
	}
	return v
}

// decides reports whether this node makes placement decisions.
func (f *failover) decides(v view) bool {
	if f.isLeader != nil {
		return f.isLeader()
	}
	return len(v.alive) > 0 && v.alive[0] == f.self
}

func (f *failover) check(ctx context.Context, now time.Time) {
	v := f.observe(f.cl.Members(), now)
	if !f.decides(v) || len(v.alive) == 0 {
		return
	}
	all, err := lab.ReadAll(f.st)
	if err != nil {
		f.log.Warn("failover: records left out", "err", err)
	}
	if v = v.withoutRemoved(lab.ListNodeIdentities(f.st)); len(v.alive) == 0 {
		return
	}
	for _, m := range planMoves(all.Hosts, v, f.failback) {
		if err := f.move(ctx, m); err != nil {
			f.log.Error("failover", "move", m.String(), "err", err)
			continue
		}
	}
}

// move writes one move, reading the host in the same transaction.
func (f *failover) move(ctx context.Context, m move) error {
	moved := false
	fn := func(tx *store.Tx) error {
		var err error
		moved, err = lab.MoveHost(tx, m.host, m.from, m.to)
		return err
	}
	var err error
	if f.update != nil {
		_, err = f.update(ctx, fn)
	} else {
		_, err = f.st.Update(fn)
	}
	switch {
	case err != nil:
		return err
	case moved && m.back:
		f.log.Info("host back on its home node", "move", m.String())
	case moved:
		f.log.Info("host placed again: its node is gone", "move", m.String())
	default:
		f.log.Debug("failover: host changed since the decision, left alone", "move", m.String())
	}
	return nil
}

// move is one decided change of a host's node.
type move struct {
	host, from, to string
	back           bool // to its home node, which is alive again
}

func (m move) String() string { return m.host + " " + m.from + "->" + m.to }

// planMoves decides the moves, in the hosts' order (by name):
//   - a host on an expired node moves to its home node when that is alive,
//     else to the least-loaded live node (lab.Placer: least loaded, first
//     by name);
//   - with failback, a host away from its home node goes back once the
//     home node is settled (alive for the failover time);
//   - hosts that opt out (no_failover) and pinned hosts (the topology
//     named their node) move only off a removed node, which can never
//     run them again, and back once a node of that name is enrolled
//     again and settled; one with no home node recorded (stored before
//     home nodes were) stays where it is unless that node was removed.
func planMoves(hosts []*labv1.Host, v view, failback bool) []move {
	isAlive := map[string]bool{}
	for _, n := range v.alive {
		isAlive[n] = true
	}
	pl := lab.NewPlacer(v.alive, lab.HostsPerNode(hosts))
	var out []move
	for _, h := range hosts {
		if h.Node == "" || (h.NoFailover || h.Pinned) && (h.Node == h.HomeNode || h.HomeNode == "") && !v.removed[h.Node] {
			continue
		}
		home := h.HomeNode
		switch {
		case v.expired[h.Node]:
			to := home
			if !isAlive[home] {
				to = pl.Place()
			}
			out = append(out, move{host: h.Name, from: h.Node, to: to, back: to == home})
		case failback && home != "" && h.Node != home && v.settled[home]:
			out = append(out, move{host: h.Name, from: h.Node, to: home, back: true})
		}
	}
	return out
}
