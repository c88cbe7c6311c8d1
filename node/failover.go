package node

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
)

// failover places again the hosts of nodes that have been gone (dead, or
// left) for longer than after, on the least-loaded live nodes, unless a
// host opts out (no_failover). One node decides, the live one first by
// name, so that two nodes never move the same host at once; the write
// replicates like any other and the new node starts the host.
type failover struct {
	cl    *cluster.Cluster
	st    *store.Store
	self  string
	after time.Duration
	log   *slog.Logger
	gone  map[string]time.Time // node -> when this node first saw it gone
}

func (f *failover) run(ctx context.Context) error {
	t := time.NewTicker(max(f.after/4, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f.check(time.Now())
		}
	}
}

func (f *failover) check(now time.Time) {
	var alive []string
	for _, m := range f.cl.Members() {
		if m.State == cluster.StateAlive || m.State == cluster.StateSuspect {
			delete(f.gone, m.Name)
			if m.State == cluster.StateAlive {
				alive = append(alive, m.Name)
			}
			continue
		}
		if _, ok := f.gone[m.Name]; !ok {
			f.gone[m.Name] = now
		}
	}
	sort.Strings(alive)
	if len(alive) == 0 || alive[0] != f.self {
		return
	}
	expired := map[string]bool{}
	for n, since := range f.gone {
		if now.Sub(since) >= f.after {
			expired[n] = true
		}
	}
	if len(expired) == 0 {
		return
	}
	var moved []string
	_, err := f.st.Update(func(tx *store.Tx) error {
		var err error
		moved, err = reassign(tx, alive, expired, f.log)
		return err
	})
	if err != nil {
		f.log.Error("failover", "err", err)
		return
	}
	for _, m := range moved {
		f.log.Info("host placed again: its node is gone", "move", m)
	}
}

// reassign places the hosts of the expired nodes again on the alive ones
// (lab.Placer: least loaded, first by name), except those that opt out,
// and returns the moves as "host from->to".
func reassign(tx *store.Tx, alive []string, expired map[string]bool, log *slog.Logger) ([]string, error) {
	all, err := lab.ReadAll(tx)
	if err != nil {
		log.Warn("failover: records left out", "err", err)
	}
	var moved []string
	pl := lab.NewPlacer(alive, lab.HostsPerNode(all.Hosts))
	for _, h := range all.Hosts {
		if !expired[h.Node] || h.NoFailover {
			continue
		}
		best := pl.Place()
		moved = append(moved, h.Name+" "+h.Node+"->"+best)
		h.Node = best
		if err := lab.PutHost(tx, h); err != nil {
			return nil, err
		}
	}
	return moved, nil
}
