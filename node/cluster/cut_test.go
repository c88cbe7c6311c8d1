package cluster

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// cutSwitch cuts a node's gossip traffic off, both ways, as a network drop
// would, while its process and sockets stay up: a transport over
// memberlist's NetTransport that drops packets and refuses streams while
// cut.
type cutSwitch struct {
	cut atomic.Bool
}

func (s *cutSwitch) set(cut bool) { s.cut.Store(cut) }

// install gives conf a cuttable transport bound where conf says.
func (s *cutSwitch) install(t *testing.T, conf *memberlist.Config) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{conf.BindAddr}, BindPort: conf.BindPort, Logger: conf.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if conf.BindPort == 0 {
		conf.BindPort = nt.GetAutoBindPort()
		conf.AdvertisePort = conf.BindPort
	}
	ct := &cutTransport{in: nt, sw: s, packets: make(chan *memberlist.Packet, 64), streams: make(chan net.Conn, 16), done: make(chan struct{})}
	ct.wg.Add(2)
	go ct.forwardPackets()
	go ct.forwardStreams()
	conf.Transport = ct
}

type cutTransport struct {
	in      *memberlist.NetTransport
	sw      *cutSwitch
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

var errCut = errors.New("test: network cut")

func (c *cutTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return c.in.FinalAdvertiseAddr(ip, port)
}

func (c *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if c.sw.cut.Load() {
		return time.Now(), nil // lost on the way
	}
	return c.in.WriteTo(b, addr)
}

func (c *cutTransport) PacketCh() <-chan *memberlist.Packet { return c.packets }

func (c *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if c.sw.cut.Load() {
		return nil, errCut
	}
	return c.in.DialTimeout(addr, timeout)
}

func (c *cutTransport) StreamCh() <-chan net.Conn { return c.streams }

func (c *cutTransport) Shutdown() error {
	err := c.in.Shutdown()
	c.once.Do(func() { close(c.done) })
	c.wg.Wait()
	return err
}

func (c *cutTransport) forwardPackets() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case p := <-c.in.PacketCh():
			if c.sw.cut.Load() {
				continue
			}
			select {
			case c.packets <- p:
			case <-c.done:
				return
			}
		}
	}
}

func (c *cutTransport) forwardStreams() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case conn := <-c.in.StreamCh():
			if c.sw.cut.Load() {
				conn.Close()
				continue
			}
			select {
			case c.streams <- conn:
			case <-c.done:
				conn.Close()
				return
			}
		}
	}
}
