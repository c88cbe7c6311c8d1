package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/overlay"
	"github.com/labnet-dev/labnet/stack"
)

// packetPath carries the lab's packets: the fabric delivers them between
// the hosts of this node, and the overlay link (GENEVE over UDP) to and
// from the hosts of other nodes. Its policy: only cluster members may send
// overlay packets; others are dropped and counted (the sealing
// authenticates them too when there is a key).
type packetPath struct {
	fab  *fabric.Fabric
	conn *overlay.Conn
	link *overlay.Link

	// allowed is the overlay addresses of the other live members.
	allowed atomic.Pointer[map[netip.AddrPort]bool]
	// peers and changed are the members to allow and the signal that
	// they changed (followMembers); stopWatch ends the watch.
	peers     func() map[string]netip.AddrPort
	changed   <-chan struct{}
	stopWatch func()
}

// newPacketPath binds the overlay address (cfg.Overlay) and joins the
// fabric to it. No sender is allowed until followMembers.
func newPacketPath(cfg Config, log *slog.Logger) (*packetPath, error) {
	var key *overlay.Key
	if len(cfg.Key) > 0 {
		var err error
		if key, err = overlay.NewKey(cfg.Key); err != nil {
			return nil, fmt.Errorf("--cluster-key: %w", err)
		}
	}
	addr, err := netip.ParseAddrPort(cfg.Overlay)
	if err != nil {
		return nil, fmt.Errorf("--overlay %s: %w", cfg.Overlay, err)
	}
	p := &packetPath{fab: fabric.New(fabric.WithClock(stack.SystemClock{})), stopWatch: func() {}}
	p.allowed.Store(&map[netip.AddrPort]bool{})
	// Large socket buffers absorb the trains a TCP flow sends at once.
	p.conn, err = overlay.Listen(addr, overlay.Options{Key: key, Accept: p.accept, ReadBuffer: 8 << 20, WriteBuffer: 8 << 20})
	if err != nil {
		return nil, fmt.Errorf("--overlay %s: %w", cfg.Overlay, err)
	}
	p.link = overlay.NewLink(p.conn, p.fab.DeliverRemote, overlay.WithLogger(log.With("component", "overlay")))
	p.fab.SetRemote(p.link)
	return p, nil
}

// accept is the overlay's sender check: members only.
func (p *packetPath) accept(from netip.AddrPort) bool { return (*p.allowed.Load())[from] }

// followMembers makes the allow-list follow peers (node name to overlay
// address), read again after every signal of watch (cluster.WatchMembers)
// while run runs.
func (p *packetPath) followMembers(peers func() map[string]netip.AddrPort, watch func() (<-chan struct{}, func())) {
	p.peers = peers
	p.changed, p.stopWatch = watch()
}

// allow replaces the allow-list with the addresses of peers.
func (p *packetPath) allow(peers map[string]netip.AddrPort) {
	m := map[netip.AddrPort]bool{}
	for _, ap := range peers {
		m[ap] = true
	}
	p.allowed.Store(&m)
}

// run carries packets from the overlay into the fabric and keeps the
// allow-list up to date until ctx is done; the link closes the overlay
// socket then.
func (p *packetPath) run(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		if err := p.link.Run(ctx); err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
		return nil
	})
	if p.peers != nil {
		eg.Go(func() error {
			for {
				p.allow(p.peers())
				select {
				case <-ctx.Done():
					return nil
				case _, ok := <-p.changed:
					if !ok {
						return nil
					}
				}
			}
		})
	}
	return eg.Wait()
}

// addr is the overlay's bound address.
func (p *packetPath) addr() netip.AddrPort { return p.conn.LocalAddr() }

// close ends the member watch and closes the overlay socket (again, if
// run has closed it).
func (p *packetPath) close() error {
	p.stopWatch()
	if err := p.conn.Close(); err != nil {
		return fmt.Errorf("overlay: close: %w", err)
	}
	return nil
}
