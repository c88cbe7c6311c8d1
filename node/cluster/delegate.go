package cluster

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate implements memberlist.Delegate, memberlist.EventDelegate,
// memberlist.ConflictDelegate, and memberlist.AliveDelegate and
// memberlist.MergeDelegate (refusals.go). memberlist calls these from its own
// goroutines, some with its locks held: none of them blocks or calls back
// into memberlist.
type delegate struct {
	c *Cluster
}

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
)

func (d *delegate) NodeMeta(limit int) []byte {
	meta := d.c.localMeta()
	if len(meta) > limit {
		return nil // encodeMeta checked the size against MetaMaxSize
	}
	return meta
}

// localMeta is this node's metadata as published: signed for its gossip
// address when it has a key and the address is known, else unsigned.
func (c *Cluster) localMeta() []byte {
	meta := *c.meta.Load()
	self := c.self.Load()
	if c.cfg.Signer == nil || self == nil {
		return meta
	}
	key := c.cfg.Signer()
	if key == nil {
		return meta
	}
	sig, err := signMeta(key, c.cfg.Name, self.ip, self.port, meta[1:])
	if err == nil {
		var signed []byte
		if signed, err = signedMeta(meta, sig); err == nil {
			return signed
		}
	}
	c.log.Warn("publishing unsigned metadata", "err", err)
	return meta
}

func (d *delegate) NotifyMsg(b []byte) {
	if name, err := decodeLeave(b); err == nil {
		d.c.noteLeaving(name)
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

// LocalState and MergeRemoteState carry nothing: the desired state is not
// gossiped.
func (d *delegate) LocalState(join bool) []byte          { return nil }
func (d *delegate) MergeRemoteState(b []byte, join bool) {}

// NotifyConflict is called when a node claims a known name from another
// address (startcheck.go).
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.c.noteConflict(existing, other)
}

func (d *delegate) NotifyJoin(n *memberlist.Node) { d.c.memberUp(n) }

func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.c.memberUp(n) }

// NotifyLeave is called when a node is declared dead or has left. The Node
// memberlist passes does not say which (its State field is never set), so
// a node that leaves announces it first (Leave), as Serf does.
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	c := d.c
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	m := c.memberLocked(n)
	m.State = StateDead
	if t, ok := c.leaving[n.Name]; ok && time.Since(t) < leaveIntentTTL {
		m.State = StateLeft
	}
	c.changed[n.Name] = c.now()
	c.notifyLocked()
}

// leaveIntentTTL is how long a node's announced leave explains its
// disappearance.
const leaveIntentTTL = 30 * time.Second

func (c *Cluster) memberUp(n *memberlist.Node) {
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	m := c.memberLocked(n)
	if m.State != StateAlive {
		c.changed[n.Name] = c.now()
	}
	m.State = StateAlive
	delete(c.leaving, n.Name)
	delete(c.refusedNow, n.Name) // memberlist's news passed NotifyAlive
	c.known.saw(m)
	c.notifyLocked()
}

// memberLocked returns n's entry, refreshed from n.
func (c *Cluster) memberLocked(n *memberlist.Node) *Member {
	m, ok := c.members[n.Name]
	if !ok {
		m = &Member{Name: n.Name, State: StateDead}
		c.members[n.Name] = m
		c.changed[n.Name] = c.now()
	}
	m.Addr = n.Address()
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		c.log.Warn("bad node metadata", "node", n.Name, "err", err)
	}
	m.Meta = meta
	return m
}

// noteLeaving records that name announced its leave.
func (c *Cluster) noteLeaving(name string) {
	if name == c.cfg.Name {
		return
	}
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	c.leaving[name] = time.Now()
	for k, t := range c.leaving {
		if time.Since(t) > leaveIntentTTL {
			delete(c.leaving, k)
		}
	}
	// The announcement may arrive after the node was found gone.
	if m, ok := c.members[name]; ok && m.State == StateDead {
		m.State = StateLeft
		c.changed[name] = c.now()
		c.notifyLocked()
	}
}

func (c *Cluster) notifyLocked() {
	for ch := range c.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// announceLeave tells the live members that this node is leaving: over
// TCP to each, concurrently, and as a broadcast for any that could not be
// reached. It waits at most timeout.
func (c *Cluster) announceLeave(ml *memberlist.Memberlist, timeout time.Duration) {
	msg := encodeLeave(c.cfg.Name)
	c.queue.QueueBroadcast(&namedBroadcast{name: "leave:" + c.cfg.Name, msg: msg})
	var wg sync.WaitGroup
	for _, n := range ml.Members() {
		if n.Name == c.cfg.Name {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ml.SendReliable(n, msg); err != nil {
				c.log.Debug("leave announcement not delivered", "node", n.Name, "err", err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// namedBroadcast is a broadcast that replaces a queued one of the same name.
type namedBroadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*namedBroadcast)(nil)

func (b *namedBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*namedBroadcast)
	return ok && o.name == b.name
}
func (b *namedBroadcast) Name() string    { return b.name }
func (b *namedBroadcast) Message() []byte { return b.msg }
func (b *namedBroadcast) Finished()       {}

func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
}

// logWriter turns memberlist's log lines ("[WARN] memberlist: ...") into
// slog records at the matching level.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if i := strings.Index(line, prefix); i >= 0 {
			level = l
			line = strings.TrimSpace(line[i+len(prefix):])
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if strings.Contains(line, ": "+refusedPrefix) {
		level = slog.LevelDebug // counted and logged, rate-limited, by refuse
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
