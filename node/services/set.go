package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// errStopped: the set stopped (its context is done) while Start was still
// starting services.
var errStopped = errors.New("services stopped")

// Set is a group of running services. Every goroutine it starts is counted in
// wg, so Close can wait for all of them.
type Set struct {
	log  *slog.Logger
	host HostInfo
	now  func() time.Time

	ctx    context.Context // done when the set stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the set started
	err    error          // from stopping; written by watch before its wg.Done

	mu      sync.Mutex
	stopped bool
	closers []io.Closer    // listeners and packet conns
	servers []*http.Server // each owns its listener and connections
	conns   map[net.Conn]struct{}
}

func newSet(ctx context.Context, log *slog.Logger, host HostInfo, o options) *Set {
	s := &Set{log: log, host: host, now: o.now, conns: map[net.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Go(s.watch)
	return s
}

// Close stops every service and closes every connection, then returns once
// every goroutine the set started has exited. It is idempotent: later calls
// wait the same way and return the same error.
func (s *Set) Close() error {
	s.cancel()
	s.wg.Wait()
	return s.err
}

// watch stops the set when its context is done: by Close, or by the parent
// context of Start.
func (s *Set) watch() {
	<-s.ctx.Done()
	s.err = s.stop()
}

func (s *Set) stop() error {
	s.mu.Lock()
	s.stopped = true
	closers, servers, conns := s.closers, s.servers, s.conns
	s.closers, s.servers, s.conns = nil, nil, nil
	s.mu.Unlock()

	var errs []error
	for _, srv := range servers {
		// Close closes the server's listener and every connection; its own
		// goroutines end through ConnState (see startHTTP).
		if err := srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, c := range closers {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for c := range conns {
		c.Close() // the conn's goroutine reports its own outcome
	}
	return errors.Join(errs...)
}

func (s *Set) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// addCloser records a listener or packet conn for stop; false when the set
// has stopped already (the caller closes c).
func (s *Set) addCloser(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.closers = append(s.closers, c)
	return true
}

func (s *Set) addServer(srv *http.Server) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.servers = append(s.servers, srv)
	return true
}

// addConn records an accepted connection for stop; false when the set has
// stopped already (the caller closes c).
func (s *Set) addConn(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Set) dropConn(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// A connHandler serves one TCP connection and returns the bytes it moved.
// The caller closes the connection when it returns.
type connHandler func(c net.Conn) (int64, error)

// A datagramHandler answers one datagram: the reply (which may alias req or
// buf, and may be empty) and whether to send it.
type datagramHandler func(req, buf []byte) (reply []byte, ok bool)

func (s *Set) listenTCP(n Net, name string, port uint16, h connHandler) error {
	l, err := n.ListenTCP(port)
	if err != nil {
		return fmt.Errorf("service %s: listen tcp port %d: %w", name, port, err)
	}
	if !s.addCloser(l) {
		l.Close()
		return errStopped
	}
	log := s.log.With("service", name, "proto", "tcp")
	log.Debug("listening", "addr", l.Addr().String())
	s.wg.Go(func() { s.acceptLoop(l, log, h) })
	return nil
}

// acceptLoop serves every connection l accepts in its own goroutine.
func (s *Set) acceptLoop(l net.Listener, log *slog.Logger, h connHandler) {
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, a stack that is busy, ...: back off as
			// net/http's Server does, rather than spin.
			delay = backoff(delay)
			log.Warn("accept failed", "err", err, "retry", delay)
			if !s.sleep(delay) {
				return
			}
			continue
		}
		delay = 0
		if !s.addConn(c) {
			c.Close()
			return
		}
		s.wg.Go(func() { s.serveConn(c, log, h) })
	}
}

func (s *Set) serveConn(c net.Conn, log *slog.Logger, h connHandler) {
	defer s.dropConn(c)
	start := time.Now()
	remote := c.RemoteAddr().String()
	log.Debug("connection open", "remote", remote)
	n, err := h(c)
	log.Debug("connection closed", "remote", remote, "bytes", n, "duration", time.Since(start), errAttr(err))
}

func (s *Set) listenUDP(n Net, name string, port uint16, h datagramHandler) error {
	pc, err := n.ListenUDP(port)
	if err != nil {
		return fmt.Errorf("service %s: listen udp port %d: %w", name, port, err)
	}
	if !s.addCloser(pc) {
		pc.Close()
		return errStopped
	}
	log := s.log.With("service", name, "proto", "udp")
	log.Debug("listening", "addr", pc.LocalAddr().String())
	s.wg.Go(func() { s.packetLoop(pc, log, h) })
	return nil
}

// packetLoop answers each datagram pc receives, one at a time.
func (s *Set) packetLoop(pc net.PacketConn, log *slog.Logger, h datagramHandler) {
	buf := make([]byte, 64<<10) // the largest UDP payload
	out := make([]byte, 0, 512)
	var delay time.Duration
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = backoff(delay)
			log.Warn("read failed", "err", err, "retry", delay)
			if !s.sleep(delay) {
				return
			}
			continue
		}
		delay = 0
		reply, ok := h(buf[:n], out)
		switch {
		case !ok:
			log.Debug("datagram", "remote", from.String(), "bytes", n)
		case loops(from):
			log.Debug("datagram not answered: from the port of a small service or port 0", "remote", from.String(), "bytes", n)
		default:
			if _, err := pc.WriteTo(reply, from); err != nil {
				log.Debug("reply failed", "remote", from.String(), "err", err)
				continue
			}
			log.Debug("datagram", "remote", from.String(), "bytes", n, "reply", len(reply))
		}
	}
}

// loops reports whether answering a datagram from addr could start a loop.
// Two small services answering each other (echo <-> chargen, the UDP packet
// storm of CVE-1999-0103) would bounce datagrams forever, so, as FreeBSD's
// inetd does in check_loop, datagrams from the port of a small service are
// not answered; nor are those from port 0, which cannot be answered.
func loops(addr net.Addr) bool {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		var err error
		if ap, err = netip.ParseAddrPort(addr.String()); err != nil {
			return false
		}
	}
	switch ap.Port() {
	case 0, portEcho, portDiscard, portDaytime, portChargen:
		return true
	}
	return false
}

// backoff doubles d from 5ms up to 1s, as net/http's Server does after a
// failed Accept.
func backoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}

// sleep waits d; false when the set stopped first.
func (s *Set) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// errAttr is the error attribute of a connection's last log record; the ends
// every connection meets (EOF, closed by Close) are not errors.
func errAttr(err error) slog.Attr {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return slog.Attr{}
	}
	return slog.String("err", err.Error())
}
