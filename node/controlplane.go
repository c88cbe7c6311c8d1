package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/control"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
)

// controlPlane is this node's side of the control plane, and the API's
// Writer. On a control node it runs node/control (raft) over the daemon's
// store; while it leads it adds the control nodes gossip shows as voters
// and imports a state file of the old format once. Every control node
// publishes in gossip whether it leads. On a member it runs nothing: its
// writes name the leader gossip reports, and the API forwards them there.
type controlPlane struct {
	name string
	log  *slog.Logger
	ctl  *control.Control // nil on a member
	cl   *cluster.Cluster // set by attach
	// meta is what this node publishes, set by attach; run's goroutine
	// and publishCA change it (metaMu).
	metaMu sync.Mutex
	meta   cluster.NodeMeta

	legacy *legacyImport // nil when there is nothing to import
	// imported is closed once nothing is left to import: the import
	// needs an empty state, so nothing else writes before (awaitImport).
	imported chan struct{}
	// firstAdmin makes the first user once the leader has imported
	// legacy (admin.go); nil when this node makes none.
	firstAdmin *firstAdmin

	st         *store.Store
	notServing func() // the daemon's: health NOT_SERVING
	startRev   uint64 // the state's revision when this process opened it
	wasVoter   bool   // this node was in the raft configuration (run's goroutine)
	removed    bool   // and is no longer: demoted
}

// openControlPlane starts raft on a control node (cfg.Control) over st;
// a member gets a plane without raft. A node without --join bootstraps a
// new single-server cluster the first time; one with --join waits for the
// leader to add it.
//
// raft's connections run over tls (rafttls.go). onError is called with
// every write the raft log cannot persist.
func openControlPlane(cfg Config, st *store.Store, legacy *legacyImport, tls *control.TLS, onError func(error), log *slog.Logger) (*controlPlane, error) {
	p := &controlPlane{name: cfg.Name, log: log, legacy: legacy, st: st, startRev: st.Revision(), notServing: func() {}, imported: make(chan struct{})}
	if !cfg.Control {
		close(p.imported)
		return p, nil
	}
	var err error
	p.ctl, err = control.Open(context.Background(), control.Config{
		Name: cfg.Name, DataDir: cfg.DataDir,
		Bind: cfg.Raft, Advertise: raftAdvertise(cfg, log),
		State:     control.StoreState(st),
		Bootstrap: cfg.bootstraps(),
		TLS:       tls,
		OnError:   onError,
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("--raft %s: %w", cfg.Raft, err)
	}
	if recs := p.ctl.Orphaned(); len(recs) > 0 && p.legacy == nil {
		li := &legacyImport{path: filepath.Join(cfg.DataDir, "state.db"), what: "a state without its raft log"}
		for _, r := range recs {
			li.recs = append(li.recs, store.Record{Key: r.Key, Value: r.Value})
		}
		p.legacy = li
	}
	if p.legacy == nil {
		close(p.imported)
	}
	return p, nil
}

// role and raftAddr are what gossip meta says of this node.
func (p *controlPlane) role() string {
	if p.ctl == nil {
		return cluster.RoleMember
	}
	return cluster.RoleControl
}

func (p *controlPlane) raftAddr() string {
	if p.ctl == nil {
		return ""
	}
	return p.ctl.Addr()
}

// isLeader reports whether this node leads the control plane: the one
// node that decides failover. A member never does.
func (p *controlPlane) isLeader() bool { return p.ctl != nil && p.ctl.IsLeader() }

// awaitImport holds a write on the leader until it has imported what it
// had to (an old state, or one whose raft log was moved away; run does
// it as soon as this node leads): the import takes only an empty state,
// so a write before it (an identity record, the gossip keys, a user's
// call) would leave the old state out. A node that does not lead, or
// stops leading meanwhile, goes on (raft answers that it does not lead).
func (p *controlPlane) awaitImport(ctx context.Context) error {
	for {
		changed := p.ctl.LeaderChanged()
		if !p.ctl.IsLeader() {
			return nil
		}
		select {
		case <-p.imported:
			return nil
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// leaderChanged is closed at this node's next change of raft state or
// leader; nil (never ready) on a member.
func (p *controlPlane) leaderChanged() <-chan struct{} {
	if p.ctl == nil {
		return nil
	}
	return p.ctl.LeaderChanged()
}

// attach gives the plane the cluster, once it exists (it needs the plane's
// role and address in its meta first).
func (p *controlPlane) attach(cl *cluster.Cluster, meta cluster.NodeMeta) {
	p.cl, p.meta = cl, meta
}

// Update commits a write: through raft on a control node; on a member it
// says which node leads, as gossip has it, waiting up to leaderWait for
// gossip to tell (at start, or during an election) or, when several nodes
// say they lead, to agree.
func (p *controlPlane) Update(ctx context.Context, fn func(*store.Tx) error) (uint64, error) {
	if p.ctl != nil {
		if err := p.awaitImport(ctx); err != nil {
			return 0, err
		}
		rev, err := p.ctl.Update(ctx, fn)
		var nl *control.NotLeaderError
		if errors.As(err, &nl) && nl.Leader == "" {
			// A control node raft has not added yet knows no leader:
			// gossip does.
			leader, _ := p.gossipLeader()
			return rev, &control.NotLeaderError{Leader: leader, Controls: nl.Controls}
		}
		return rev, err
	}
	leader, agreed := p.gossipLeader()
	if leader == "" || !agreed {
		deadline := time.NewTimer(leaderWait)
		defer deadline.Stop()
		poll := time.NewTicker(50 * time.Millisecond)
		defer poll.Stop()
	wait:
		for leader == "" || !agreed {
			select {
			case <-ctx.Done():
				break wait
			case <-deadline.C:
				break wait
			case <-poll.C:
				leader, agreed = p.gossipLeader()
			}
		}
	}
	return 0, &control.NotLeaderError{Leader: leader, Controls: p.gossipControls()}
}

// gossipControls names the control nodes gossip knows of, alive or not:
// those a member's write needs.
func (p *controlPlane) gossipControls() []string {
	if p.cl == nil {
		return nil
	}
	var names []string
	for _, m := range p.cl.Members() {
		if m.Meta.Role == cluster.RoleControl {
			names = append(names, m.Name)
		}
	}
	slices.Sort(names)
	return names
}

// leaderWait bounds how long a member's write waits for gossip to name a
// leader, or to agree on one.
const leaderWait = 5 * time.Second

// gossipLeader is the leader as gossip tells it (leaderOf).
//
// This node is left out unless it says it leads: a node asks who leads
// when it does not (a control node raft has not added yet would otherwise
// name itself as the only control node).
func (p *controlPlane) gossipLeader() (leader string, agreed bool) {
	if p.cl == nil {
		return "", true
	}
	members := slices.DeleteFunc(p.cl.Members(), func(m cluster.Member) bool { return m.Name == p.name && !m.Meta.Leader })
	return leaderOf(members)
}

// Err is the control plane's persistence failure, nil while healthy.
func (p *controlPlane) Err() error {
	if p.ctl == nil {
		return nil
	}
	return p.ctl.Err()
}

// metaUpdater is the cluster's UpdateMeta, which spreads changed meta.
type metaUpdater interface {
	UpdateMeta(cluster.NodeMeta) error
}

// publish changes this node's gossip meta and spreads it; what names the
// change in the warning when it cannot.
func (p *controlPlane) publish(what string, change func(*cluster.NodeMeta)) {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	change(&p.meta)
	if u, ok := any(p.cl).(metaUpdater); ok {
		if err := u.UpdateMeta(p.meta); err != nil {
			p.log.Warn(what, "err", err)
		}
	}
}

// publishCA says in gossip which cluster CA this node's certificate is
// from, once it has enrolled.
func (p *controlPlane) publishCA(hash string) {
	p.publish("publishing the CA hash in gossip", func(m *cluster.NodeMeta) { m.CAHash = hash })
}

// run follows leadership on a control node until ctx ends: it publishes
// this node's leader flag, and while it leads adds control nodes gossip
// shows as voters and imports the old state file once.
func (p *controlPlane) run(ctx context.Context) error {
	if p.ctl == nil {
		return nil
	}
	membersChanged, stop := p.cl.WatchMembers()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var published struct {
		leader bool
		term   uint64
	}
	for {
		leader := p.ctl.IsLeader()
		var term uint64
		if leader {
			term = p.ctl.Term()
		}
		if leader != published.leader || term != published.term {
			p.publish("publishing leadership in gossip", func(m *cluster.NodeMeta) { m.Leader, m.LeaderTerm = leader, term })
			if leader && !published.leader {
				p.log.Info("this node leads the control plane")
			}
			published.leader, published.term = leader, term
		}
		if leader {
			p.addControlNodes(ctx)
			p.importLegacy(ctx)
			if p.legacy == nil {
				p.firstAdmin.try(ctx)
			}
		}
		p.checkRemoved()
		select {
		case <-ctx.Done():
			return nil
		case <-p.ctl.LeaderChanged():
		case <-membersChanged:
		case <-tick.C:
		}
	}
}

// addControlNodes adds as voters the live control nodes gossip shows that
// the raft configuration lacks (an assistant's labd started with
// --control --join), or whose raft address changed; not those an operator
// demoted (labctl node demote) until they are promoted again, and not
// those raft's TLS would refuse (raftReachable): a voter raft cannot
// reach would count towards the quorum and stall every write.
func (p *controlPlane) addControlNodes(ctx context.Context) {
	have := map[string]string{}
	for _, s := range p.ctl.Servers() {
		have[s.Name] = s.Addr
	}
	demoted := lab.Demoted(p.st)
	for _, m := range p.cl.Members() {
		if m.State != cluster.StateAlive || m.Meta.Role != cluster.RoleControl || m.Meta.RaftAddr == "" || demoted[m.Name] || !p.raftReachable(m) {
			continue
		}
		if addr, ok := have[m.Name]; ok && addr == m.Meta.RaftAddr {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.ctl.AddVoter(actx, m.Name, m.Meta.RaftAddr)
		cancel()
		if err != nil {
			p.log.Warn("adding a control node to the raft configuration", "node", m.Name, "raft", m.Meta.RaftAddr, "err", err)
			continue
		}
		p.log.Info("control node added", "node", m.Name, "raft", m.Meta.RaftAddr)
	}
}

// raftReachable reports whether m can hold raft connections with this
// node: gossip shows its certificate is of this node's cluster CA (a
// --control node that enrols publishes the CA's hash once it has its
// certificate), and its identity record, when there is one, is a control
// node's that was not removed (a member restarted with --control keeps
// a member's certificate, which raft refuses).
func (p *controlPlane) raftReachable(m cluster.Member) bool {
	p.metaMu.Lock()
	ca := p.meta.CAHash
	p.metaMu.Unlock()
	if m.Meta.CAHash == "" || m.Meta.CAHash != ca {
		return false
	}
	id, ok := lab.GetNodeIdentity(lab.StoreGetter{St: p.st}, m.Name)
	return !ok || (id.Kind == auth.KindControl && !id.Removed)
}

// importLegacy proposes the records of an old-format state file once,
// when the control plane's state is still empty.
func (p *controlPlane) importLegacy(ctx context.Context) {
	if p.legacy == nil {
		return
	}
	n, err := p.legacy.propose(ctx, p.ctl)
	var nl *control.NotLeaderError
	switch {
	case errors.As(err, &nl):
		return // leadership moved: the next leader of this node tries again
	case err != nil:
		p.log.Error("importing "+p.legacy.what, "err", err)
	case n < 0:
		p.log.Warn(p.legacy.what+" was not imported: the control plane already holds a state", "file", p.legacy.path)
	default:
		p.log.Info(fmt.Sprintf("imported %d records from %s", n, p.legacy.what), "file", p.legacy.path)
	}
	p.legacy = nil
	close(p.imported)
}

// close stops raft; the store is the daemon's.
func (p *controlPlane) close() error {
	if p.ctl == nil {
		return nil
	}
	return p.ctl.Close()
}
