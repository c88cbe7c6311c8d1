package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/labnet-dev/labnet/node/auth"
)

// handshakeTimeout bounds the TLS handshake on a new raft connection, so a
// peer that connects and says nothing cannot hold a goroutine for long.
const handshakeTimeout = 5 * time.Second

// accepted is the byte the accepting side sends once it has checked the
// dialer's certificate: in TLS 1.3 the client's handshake ends before the
// server has read its certificate, so without it a refused dialer would
// learn only on raft's first read.
const accepted = 1

// ErrRefusedByPeer is returned to a dialer whose peer closed the
// connection instead of accepting it (it refused our certificate, or has
// none of its own yet).
var ErrRefusedByPeer = errors.New("raft peer refused the connection")

// streamLayer is raft's transport below NetworkTransport: TCP on the bind
// address, reporting the advertised address as its own. With TLS (labd's
// case: tls.go), every connection runs mutual TLS 1.3 in both directions
// before raft's first byte, and a peer whose certificate is refused is
// closed and counted. Without it raft speaks plain TCP, which Open
// allows on loopback only.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	tls       *TLS // nil: plain TCP
	log       *slog.Logger

	refused auth.NodeRefusals
}

func newStreamLayer(bind, advertise string, t *TLS, log *slog.Logger) (*streamLayer, error) {
	if t == nil && !IsLoopback(bind) {
		return nil, fmt.Errorf("raft: %s is not a loopback address: raft runs over plain TCP only on loopback, and needs TLS elsewhere", bind)
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("raft: listen on %s: %w", bind, err)
	}
	adv := ln.Addr()
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("raft: advertise address %q: %w", advertise, err)
		}
		if a.Port == 0 { // bound to any port: advertise the one we got
			a.Port = ln.Addr().(*net.TCPAddr).Port
		}
		adv = a
	}
	if a, ok := adv.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft: advertise address %s is unspecified: set --advertise", adv)
	}
	return &streamLayer{ln: ln, advertise: adv, tls: t, log: log}, nil
}

// IsLoopback reports whether a host:port address (to bind, or a peer's)
// is on loopback: 127.0.0.0/8, ::1 (IPv4-mapped too) or localhost.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Accept returns the next connection. The handshake runs on the
// connection's first read or write, on raft's goroutine for that
// connection, so one slow peer never holds up the accept loop.
func (s *streamLayer) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil || s.tls == nil {
		return c, err
	}
	srv, err := s.tls.server()
	if err != nil {
		// This node has no certificate yet (it has not enrolled): the
		// peer is not at fault, and tries again.
		c.Close()
		s.log.Debug("raft connection closed: this node cannot serve TLS yet", "from", c.RemoteAddr().String(), "err", err)
		return &authConn{Conn: c, err: err, done: true}, nil
	}
	tc := tls.Server(c, srv)
	return &authConn{Conn: tc, handshake: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			s.count(c.RemoteAddr(), err)
			return fmt.Errorf("raft connection from %s: %w", c.RemoteAddr(), err)
		}
		tc.SetWriteDeadline(time.Now().Add(handshakeTimeout))
		defer tc.SetWriteDeadline(time.Time{})
		if _, err := tc.Write([]byte{accepted}); err != nil {
			return fmt.Errorf("raft connection from %s: %w", c.RemoteAddr(), err)
		}
		return nil
	}}, nil
}

func (s *streamLayer) Close() error   { return s.ln.Close() }
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to a peer within raft's timeout and, with TLS, completes
// the handshake (handshakeTimeout) and waits for the peer to accept it
// before raft sends anything.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil || s.tls == nil {
		return c, err
	}
	cli, err := s.tls.client()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("raft: connect to %s: %w", addr, err)
	}
	tc := tls.Client(c, cli)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		s.count(c.RemoteAddr(), err)
		return nil, fmt.Errorf("raft: connect to %s: %w", addr, err)
	}
	tc.SetReadDeadline(time.Now().Add(handshakeTimeout))
	var ok [1]byte
	if _, err := io.ReadFull(tc, ok[:]); err != nil || ok[0] != accepted {
		c.Close()
		s.count(c.RemoteAddr(), &RefusedError{Reason: "refused_by_peer", Err: ErrRefusedByPeer})
		return nil, fmt.Errorf("raft: connect to %s: %w (%v)", addr, ErrRefusedByPeer, err)
	}
	tc.SetReadDeadline(time.Time{})
	return tc, nil
}

// count counts a connection refused, by the node its certificate names
// when that was verified (else the peer's address) and the reason, and
// logs it at most once in 10 s per node and reason.
func (s *streamLayer) count(from net.Addr, err error) {
	node, reason := addrHost(from), "handshake"
	var r *RefusedError
	if errors.As(err, &r) {
		reason = r.Reason
		if r.Node != "" {
			node = r.Node
		}
	}
	if s.refused.Add(node, reason) {
		s.log.Warn("raft connection refused", "node", node, "reason", reason, "addr", from.String(), "err", err)
	}
}

// addrHost is the host of a network address ("" when it has none).
func addrHost(a net.Addr) string {
	if a == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// authConn runs handshake once, before the first read or write; a failed
// handshake closes the connection and fails every later call. Read then
// says io.EOF, as a peer that hung up: the refusal is counted and logged
// (rate-limited) by the stream layer, and raft logs every other read
// error, once per connection.
type authConn struct {
	net.Conn
	once      sync.Once
	handshake func() error
	done      bool // err is set already: no handshake
	err       error
}

func (c *authConn) ready() error {
	c.once.Do(func() {
		if c.done {
			return
		}
		if c.err = c.handshake(); c.err != nil {
			c.Conn.Close()
		}
	})
	return c.err
}

func (c *authConn) Read(p []byte) (int, error) {
	if err := c.ready(); err != nil {
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

func (c *authConn) Write(p []byte) (int, error) {
	if err := c.ready(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
