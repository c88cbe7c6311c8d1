package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/labnet-dev/labnet/stack"
)

// Gateway is a TUN device that is an interface of one stack at a time: the
// stack it was attached to last. It outlives the stacks: when a virtual
// router restarts (a new stack), the gateway is attached to the new one
// and the kernel's interface, its addresses and routes stay as they are.
type Gateway struct {
	d       *Device
	cur     atomic.Pointer[stack.NIC] // the interface of the stack attached last
	dropped atomic.Uint64
	done    chan struct{}
	readErr error
	once    sync.Once
}

// NewGateway takes ownership of d and starts reading it. Until the first
// Attach, packets from the kernel are dropped (and counted).
func NewGateway(d *Device) *Gateway {
	g := &Gateway{d: d, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		g.readErr = readLoop(d, func(pkt []byte) {
			if nic := g.cur.Load(); nic != nil {
				nic.Receive(pkt)
			} else {
				g.dropped.Add(1)
			}
		})
	}()
	return g
}

// Attach adds interface nicName with addrs to s, whose wire is the device,
// and sends the kernel's packets to s from now on. The previous stack, if
// any, keeps its interface, whose packets still reach the kernel; it is
// meant to be one that stopped.
func (g *Gateway) Attach(s *stack.Stack, nicName string, mtu int, addrs ...netip.Prefix) (*stack.NIC, error) {
	nic, err := s.AddInterface(nicName, mtu, link{g.d}, addrs...)
	if err != nil {
		return nil, fmt.Errorf("tun %s: attach: %w", g.d.Name(), err)
	}
	g.cur.Store(nic)
	return nic, nil
}

// Dropped counts the packets from the kernel that came while no stack was
// attached.
func (g *Gateway) Dropped() uint64 { return g.dropped.Load() }

// Name is the device's interface name.
func (g *Gateway) Name() string { return g.d.Name() }

// Close closes the device (the kernel removes the interface, and its
// routes) and waits for the reader. It returns the read error that ended
// the reader early, if one did. Idempotent.
func (g *Gateway) Close() error {
	var err error
	g.once.Do(func() {
		cerr := g.d.Close()
		<-g.done
		err = errors.Join(g.readErr, cerr)
	})
	return err
}
