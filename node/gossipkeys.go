package node

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/metrics"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Gossip keys from the control plane (docs/security.md): the keys
// memberlist encrypts gossip with are the record lab.GossipKeys in the
// state. The leader makes it from the key the cluster already gossips
// with, and rotates it when a node is removed (lab.NextGossipKeys); every
// node installs the record's keys when it changes in its replica and
// keeps them in DATA/gossip.keys, which it starts with. A node whose keys
// went stale while it was off (its joins fail) asks a control node for
// the current ones over mutual TLS (ControlService.GossipKeys), which a
// removed node's certificate cannot.
//
// When gossip is encrypted: with --cluster-key (its hash is the first
// key, as before), with keys in DATA/gossip.keys (from Enroll, or
// installed earlier), or on a node that holds the CA and gossips on a
// real address without --insecure: it makes the first key then (derived
// from the CA's key, so that every CA holder of a StatefulSet starts with
// the same one). Loopback development without a key stays plaintext.

// Rotation graces (lab.NextGossipKeys): a new key is primary
// keyPromoteAfter after every node was given it, and the old keys are
// dropped keyDropAfter after that.
const (
	keyPromoteAfter = 5 * time.Second
	keyDropAfter    = 30 * time.Second
)

// keyFetchAfter is how long a node with somewhere to join hears no other
// node before it asks a control node for the current gossip keys, and
// keyFetchEvery how often it asks again while that lasts.
const (
	keyFetchAfter = 5 * time.Second
	keyFetchEvery = 10 * time.Second
	keyFetchWait  = 5 * time.Second // one round of asking
)

// gossipKeys is this node's part in the gossip keys.
type gossipKeys struct {
	self string
	dir  string
	cl   *cluster.Cluster
	st   *store.Store
	log  *slog.Logger
	now  func() time.Time

	// The leader's part (nil on a member: never leads).
	isLeader func() bool
	update   updater
	promote  time.Duration
	drop     time.Duration

	// ask asks the control node at the API address addr for the keys;
	// hasCert tells whether this node may ask (it has a certificate).
	ask       func(ctx context.Context, addr string) ([][]byte, error)
	hasCert   func() bool
	askAlso   []string // API addresses to ask besides the control nodes gossip and the known file show
	rotations atomic.Uint64
	installs  atomic.Uint64
	fetches   atomic.Uint64

	mu      sync.Mutex
	lastRaw []byte // the record last installed, or the one in the replica at start
}

// initialGossipKeys are the keys this node starts gossip with (before
// cluster.Config.Key's): DATA/gossip.keys', or, on a node that holds the
// CA (ca) and needs encrypted gossip without a cluster key, a key made
// now from the CA's key and kept in the file.
func initialGossipKeys(cfg Config, ca *auth.CA, log *slog.Logger) ([][]byte, error) {
	keys, err := loadGossipKeys(cfg.DataDir)
	if err != nil || len(keys) > 0 || len(cfg.Key) > 0 {
		return keys, err
	}
	if ca == nil || !gossipNeedsKey(cfg) {
		return nil, nil
	}
	key, err := caGossipKey(ca)
	if err != nil {
		return nil, err
	}
	if err := saveGossipKeys(cfg.DataDir, [][]byte{key}); err != nil {
		return nil, err
	}
	log.Info("gossip is encrypted with a key made from the cluster CA's (no --cluster-key)", "file", gossipKeysFile)
	return [][]byte{key}, nil
}

// gossipNeedsKey reports whether this node's gossip must be encrypted
// though it has no cluster key: it is not on loopback, and --insecure
// does not ask for plaintext.
func gossipNeedsKey(cfg Config) bool { return !cfg.Insecure && !isLoopback(cfg.Gossip) }

// caGossipKey is the first gossip key of a cluster without a cluster key:
// HKDF-SHA256 (RFC 5869) of the CA's private key, so that every node
// given the CA (--ca-cert/--ca-key) makes the same.
func caGossipKey(ca *auth.CA) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return newGossipKey()
	}
	return hkdf.Key(sha256.New, der, nil, "labnet gossip key 1", 32)
}

// newGossipKey is a random 32-byte key (AES-256).
func newGossipKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	return k, nil
}

// newGossipKeys prepares the keys' part; the record now in the replica is
// taken as installed (the node started with DATA/gossip.keys, which may
// be newer: a replica that was off is caught up before it is believed).
func newGossipKeys(self, dir string, cl *cluster.Cluster, st *store.Store, log *slog.Logger) *gossipKeys {
	return &gossipKeys{
		self: self, dir: dir, cl: cl, st: st, log: log, now: time.Now,
		promote: keyPromoteAfter, drop: keyDropAfter,
		lastRaw: lab.GossipKeysRaw(lab.StoreGetter{St: st}),
	}
}

// current are the keys to hand a node (Enroll, GossipKeys): the record's,
// or, before the leader made it, the ones this node gossips with.
func (g *gossipKeys) current() [][]byte {
	if g == nil {
		return nil
	}
	if k, ok := lab.GetGossipKeys(lab.StoreGetter{St: g.st}); ok {
		return k.Keys
	}
	return g.cl.Keys()
}

// run installs the record's keys whenever they change, leads their
// rotation while this node leads the control plane, and asks a control
// node for them while no other node is heard (in a goroutine of its own,
// as a control node that does not answer may take keyFetchWait; what it
// gets is installed here, unless the record changed meanwhile). It
// returns when ctx ends.
func (g *gossipKeys) run(ctx context.Context) error {
	changed, stop := g.st.Subscribe()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	type answer struct {
		keys     [][]byte
		at       string
		ok       bool
		installs uint64 // g.installs when asked
	}
	answers := make(chan answer, 1)
	asking := false
	lonely := g.now()
	var asked, warned time.Time
	for {
		g.follow()
		g.lead(ctx)
		switch now := g.now(); {
		case g.heardOthers() || (g.isLeader != nil && g.isLeader()):
			lonely = now
		case !asking && now.Sub(lonely) >= keyFetchAfter && now.Sub(asked) >= keyFetchEvery && g.canAsk():
			asked, asking = now, true
			installs := g.installs.Load()
			wg.Add(1)
			go func() {
				defer wg.Done()
				keys, at, ok := g.get(ctx)
				answers <- answer{keys, at, ok, installs}
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
		case a := <-answers:
			asking = false
			switch {
			case !a.ok:
				if now := g.now(); now.Sub(warned) >= time.Minute {
					warned = now
					g.log.Warn("no other node heard, and no control node gave this node the gossip keys: it may have been removed, or the control plane is away", "asked", g.askAt())
				}
			case g.installs.Load() == a.installs: // else newer keys came meanwhile
				g.use(a.keys, a.at)
			}
		}
	}
}

// follow installs the record's keys if it changed since last time.
func (g *gossipKeys) follow() {
	raw := lab.GossipKeysRaw(lab.StoreGetter{St: g.st})
	g.mu.Lock()
	same := bytes.Equal(raw, g.lastRaw)
	g.lastRaw = raw
	g.mu.Unlock()
	if same || raw == nil {
		return
	}
	k, err := lab.ParseGossipKeys(raw)
	if err != nil {
		g.log.Error("the gossip keys in the state are unusable: keeping the installed ones", "err", err)
		return
	}
	if err := g.install(k.Keys); err != nil {
		g.log.Error("installing the gossip keys", "generation", k.Generation, "err", err)
		return
	}
	g.log.Info("gossip keys installed", "generation", k.Generation, "keys", len(k.Keys), "pending", k.Pending)
}

// install makes keys the cluster's and keeps them in DATA/gossip.keys.
func (g *gossipKeys) install(keys [][]byte) error {
	if err := g.cl.SetKeys(keys); err != nil {
		return err
	}
	g.installs.Add(1)
	if err := saveGossipKeys(g.dir, keys); err != nil {
		g.log.Warn("keeping the gossip keys for the next start", "err", err)
	}
	return nil
}

// lead, on the leader, makes the keyring when the state has none and
// gossip is encrypted, and takes the rotation's next step when one is
// due.
func (g *gossipKeys) lead(ctx context.Context) {
	if g.isLeader == nil || !g.isLeader() {
		return
	}
	get := lab.StoreGetter{St: g.st}
	raw := lab.GossipKeysRaw(get)
	now := g.now()
	var next lab.GossipKeys
	var step string
	if k, ok := lab.GetGossipKeys(get); ok {
		var err error
		next, step, err = lab.NextGossipKeys(k, lab.ListNodeIdentities(g.st), now, g.promote, g.drop, newGossipKey)
		if err != nil {
			g.log.Error("rotating the gossip keys", "err", err)
			return
		}
	} else if keys := g.cl.Keys(); len(keys) > 0 {
		next, step = lab.NewGossipKeys(keys[0], now), "create"
	}
	if step == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := g.update(ctx, func(tx *store.Tx) error {
		if !bytes.Equal(lab.GossipKeysRaw(tx), raw) {
			return errKeysMoved
		}
		return lab.PutGossipKeys(tx, next)
	})
	switch {
	case errors.Is(err, errKeysMoved):
		return
	case err != nil:
		g.log.Warn("writing the gossip keys", "step", step, "err", err)
		return
	}
	if step == lab.KeyRotate {
		g.rotations.Add(1)
	}
	g.log.Info("gossip keys: "+step, "generation", next.Generation, "keys", len(next.Keys), "covered_removals", len(next.Covered))
}

// errKeysMoved: the record changed between reading and writing it.
var errKeysMoved = errors.New("gossip keys changed meanwhile")

// heardOthers reports whether gossip shows another node alive, or this
// node has nobody to join (a single node).
func (g *gossipKeys) heardOthers() bool {
	for _, m := range g.cl.Members() {
		if m.State == cluster.StateAlive && m.Name != g.self {
			return true
		}
	}
	return len(g.askAt()) == 0
}

// askAt are the API addresses to ask for the keys.
func (g *gossipKeys) askAt() []string {
	out := g.cl.ControlAPIs()
	for _, a := range g.askAlso {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// canAsk reports whether this node may ask a control node for the keys:
// it has a certificate.
func (g *gossipKeys) canAsk() bool { return g.ask != nil && g.hasCert != nil && g.hasCert() }

// fetch asks the control nodes this node knows for the current keys and
// installs them when they differ from its own. It reports whether a
// control node answered.
func (g *gossipKeys) fetch(ctx context.Context) bool {
	keys, at, ok := g.get(ctx)
	if ok {
		g.use(keys, at)
	}
	return ok
}

// get asks the control nodes this node knows for the current keys, over
// mutual TLS with its certificate, until one answers (within
// keyFetchWait).
func (g *gossipKeys) get(ctx context.Context) (keys [][]byte, at string, ok bool) {
	if !g.canAsk() {
		return nil, "", false
	}
	ctx, cancel := context.WithTimeout(ctx, keyFetchWait)
	defer cancel()
	for _, addr := range g.askAt() {
		keys, err := g.ask(ctx, addr)
		if err != nil {
			g.log.Debug("asking for the gossip keys", "at", addr, "err", err)
			continue
		}
		g.fetches.Add(1)
		return keys, addr, true
	}
	return nil, "", false
}

// use installs keys a control node (at) gave, unless they are the ones
// installed or none.
func (g *gossipKeys) use(keys [][]byte, at string) {
	if len(keys) == 0 || slices.EqualFunc(keys, g.cl.Keys(), bytes.Equal) {
		return
	}
	if err := g.install(keys); err != nil {
		g.log.Warn("installing the gossip keys from "+at, "err", err)
		return
	}
	g.log.Info("gossip keys fetched from a control node: this node's were stale", "at", at, "keys", len(keys))
}

// askVia is gossipKeys.ask over dial (the API's peer connections: mutual
// TLS with this node's certificate).
func askVia(dial func(addr string) (grpc.ClientConnInterface, error)) func(ctx context.Context, addr string) ([][]byte, error) {
	return func(ctx context.Context, addr string) ([][]byte, error) {
		conn, err := dial(addr)
		if err != nil {
			return nil, err
		}
		resp, err := labv1.NewControlServiceClient(conn).GossipKeys(ctx, &labv1.GossipKeysRequest{})
		if err != nil {
			return nil, err
		}
		if err := lab.ValidGossipKeys(resp.GetKeys()); err != nil {
			return nil, fmt.Errorf("gossip keys from %s: %w", addr, err)
		}
		return resp.GetKeys(), nil
	}
}

// joinAPIs are the --join hosts at this node's own API port: the last
// place to ask for keys when no control node's API is known (a new pod of
// a StatefulSet, whose pods all use the same ports).
func joinAPIs(cfg Config) []string {
	_, port, err := net.SplitHostPort(cfg.API)
	if err != nil || port == "0" {
		return nil
	}
	var out []string
	for _, j := range cfg.Join {
		if host, _, err := net.SplitHostPort(j); err == nil {
			out = append(out, net.JoinHostPort(host, port))
		}
	}
	return out
}

// counts are the keys' counters, for metrics.
func (g *gossipKeys) counts() metrics.GossipKeys {
	return metrics.GossipKeys{Rotations: g.rotations.Load(), Installs: g.installs.Load(), Fetches: g.fetches.Load()}
}
