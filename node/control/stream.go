package control

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// handshakeTimeout bounds the key exchange on a new raft connection, so a
// peer that connects and says nothing cannot hold a goroutine for long.
const handshakeTimeout = 5 * time.Second

// magic opens every authenticated raft connection: it names the protocol
// and its version, so a peer speaking something else is refused at once.
var magic = [4]byte{'L', 'R', 'A', '1'}

// ErrKeyRefused is returned to a dialer whose peer did not prove the
// cluster key, or did not accept ours.
var ErrKeyRefused = errors.New("raft peer refused: cluster key does not match")

// streamLayer is raft's transport below NetworkTransport: TCP on the bind
// address, reporting the advertised address as its own. With a key, every
// connection first runs a challenge-response in both directions (dial, accept)
// before raft's first byte; a peer without the key is refused and counted.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	key       []byte // derived from the cluster key; nil: no authentication

	refused atomic.Uint64
}

func newStreamLayer(bind, advertise string, clusterKey []byte) (*streamLayer, error) {
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
	s := &streamLayer{ln: ln, advertise: adv}
	if len(clusterKey) > 0 {
		s.key = deriveKey(clusterKey)
	}
	return s, nil
}

// Accept returns the next connection. The handshake runs on the
// connection's first read or write, on raft's goroutine for that
// connection, so one slow peer never holds up the accept loop.
func (s *streamLayer) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil || s.key == nil {
		return c, err
	}
	return &authConn{Conn: c, handshake: func() error {
		err := accept(c, s.key)
		if err != nil {
			s.refused.Add(1)
		}
		return err
	}}, nil
}

func (s *streamLayer) Close() error   { return s.ln.Close() }
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to a peer and, with a key, completes the handshake before
// raft sends anything.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil || s.key == nil {
		return c, err
	}
	if err := dial(c, s.key); err != nil {
		c.Close()
		s.refused.Add(1)
		return nil, fmt.Errorf("raft: connect to %s: %w", addr, err)
	}
	return c, nil
}

// authConn runs handshake once, before the first read or write; a failed
// handshake closes the connection and fails every later call.
type authConn struct {
	net.Conn
	once      sync.Once
	handshake func() error
	err       error
}

func (c *authConn) ready() error {
	c.once.Do(func() {
		if c.err = c.handshake(); c.err != nil {
			c.Conn.Close()
		}
	})
	return c.err
}

func (c *authConn) Read(p []byte) (int, error) {
	if err := c.ready(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *authConn) Write(p []byte) (int, error) {
	if err := c.ready(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// deriveKey keeps the cluster key itself out of the raft handshake: raft
// connections use their own key, so a flaw here says nothing about the
// gossip key's other uses.
func deriveKey(clusterKey []byte) []byte {
	m := hmac.New(sha256.New, clusterKey)
	m.Write([]byte("labnet raft transport v1"))
	return m.Sum(nil)
}

// proof is what one side sends to show it holds key: a MAC over both
// nonces and its role, so a proof can be neither replayed on another
// connection nor reflected back to its sender.
func proof(key []byte, role string, dialNonce, acceptNonce []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	m.Write(dialNonce)
	m.Write(acceptNonce)
	return m.Sum(nil)
}

const nonceLen = 32

// dial is the connecting side of the handshake:
//
//	dialer   -> magic, nonceD
//	acceptor -> nonceA, proof("accept", nonceD, nonceA)
//	dialer   -> proof("dial", nonceD, nonceA)
//	acceptor -> 1 (accepted)
//
// The dialer checks the acceptor's proof before it sends its own.
func dial(c net.Conn, key []byte) error {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.SetDeadline(time.Time{})
	nonceD := make([]byte, nonceLen)
	rand.Read(nonceD)
	if _, err := c.Write(append(magic[:], nonceD...)); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	in := make([]byte, nonceLen+sha256.Size)
	if _, err := io.ReadFull(c, in); err != nil {
		return fmt.Errorf("handshake: %w (%w)", ErrKeyRefused, err)
	}
	nonceA, theirs := in[:nonceLen], in[nonceLen:]
	if !hmac.Equal(theirs, proof(key, "accept", nonceD, nonceA)) {
		return ErrKeyRefused
	}
	if _, err := c.Write(proof(key, "dial", nonceD, nonceA)); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	var ok [1]byte
	if _, err := io.ReadFull(c, ok[:]); err != nil || ok[0] != 1 {
		return ErrKeyRefused
	}
	return nil
}

// accept is the accepting side of dial's handshake.
func accept(c net.Conn, key []byte) error {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.SetDeadline(time.Time{})
	in := make([]byte, len(magic)+nonceLen)
	if _, err := io.ReadFull(c, in); err != nil {
		return fmt.Errorf("raft handshake from %s: %w", c.RemoteAddr(), err)
	}
	if [4]byte(in[:4]) != magic {
		return fmt.Errorf("raft handshake from %s: not a labnet raft peer, or one without a cluster key", c.RemoteAddr())
	}
	nonceD := in[4:]
	nonceA := make([]byte, nonceLen)
	rand.Read(nonceA)
	if _, err := c.Write(append(nonceA, proof(key, "accept", nonceD, nonceA)...)); err != nil {
		return fmt.Errorf("raft handshake from %s: %w", c.RemoteAddr(), err)
	}
	theirs := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, theirs); err != nil {
		return fmt.Errorf("raft handshake from %s: %w", c.RemoteAddr(), err)
	}
	if !hmac.Equal(theirs, proof(key, "dial", nonceD, nonceA)) {
		return fmt.Errorf("raft handshake from %s: %w", c.RemoteAddr(), ErrKeyRefused)
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return fmt.Errorf("raft handshake from %s: %w", c.RemoteAddr(), err)
	}
	return nil
}
