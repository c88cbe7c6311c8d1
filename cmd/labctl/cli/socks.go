package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/cmd/labctl/cli/socks5"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// DefaultSocksListen is where socks listens.
const DefaultSocksListen = "127.0.0.1:1080"

// socksHandshakeTimeout bounds a client's greeting and request.
const socksHandshakeTimeout = 30 * time.Second

func (a *app) newSocksCommand() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "socks HOST [--listen 127.0.0.1:1080]",
		Short: "Run a SOCKS5 proxy whose connections leave from a virtual host",
		Long: `Run a SOCKS5 proxy (RFC 1928) on this machine whose connections and
datagrams are made by HOST, so that any program that speaks SOCKS (curl, a
browser, Python with a SOCKS library) reaches every address HOST can
reach in the lab.

CONNECT carries TCP; UDP ASSOCIATE carries UDP (the relay listens on a UDP
port of the address the client connected to; fragmented datagrams are
dropped). Names of the lab's hosts resolve when the client lets the proxy
resolve names: curl --socks5-hostname, or a socks5h:// proxy URL. No
authentication: the proxy listens on loopback unless told otherwise.

Each connection is logged on standard error with the address it has in
the lab. Ctrl-C stops the proxy.`,
		Example: `  labctl socks h1 &
  curl --socks5-hostname 127.0.0.1:1080 http://h2/
  curl -x socks5h://127.0.0.1:1080 http://10.0.2.10/bytes/1000`,
		Args:              exactArgs("HOST", 1),
		ValidArgsFunction: a.completeHostsForArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runSocks(cmd.Context(), args[0], listen)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", DefaultSocksListen, "local `ADDRESS:PORT` to listen on (port 0: a free one)")
	return cmd
}

func (a *app) runSocks(ctx context.Context, hostRef, listen string) error {
	host, err := a.resolve(ctx, collHosts, hostRef)
	if err != nil {
		return err
	}
	// A Datagrams call checks that the host runs, without a connection.
	if err := a.checkRunning(ctx, host); err != nil {
		return err
	}
	l, err := listenLocal("--listen", listen)
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintf(a.stdout, "SOCKS5 proxy on %s, connecting from %s\n", l.Addr(), shortID(host))
	log := &connLog{a: a}
	return serve(ctx, l, func(c *net.TCPConn) { a.socksConn(ctx, host, c, log) })
}

// checkRunning opens and closes a UDP socket on host: an error says why the
// host cannot make connections.
func (a *app) checkRunning(ctx context.Context, host string) error {
	sc, err := a.sockets()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	st, err := sc.Datagrams(cctx)
	if err != nil {
		return err
	}
	st.Send(&labv1.DatagramsRequest{Event: &labv1.DatagramsRequest_Open{Open: &labv1.DatagramsOpen{Host: host}}})
	if _, err := st.Recv(); err != nil {
		return a.timedOut(ctx, cctx, err)
	}
	st.CloseSend()
	return nil
}

// socksConn serves one client.
func (a *app) socksConn(ctx context.Context, host string, c *net.TCPConn, log *connLog) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(socksHandshakeTimeout))
	req, err := socks5.Handshake(c)
	if err != nil {
		log.printf("%s: %v", c.RemoteAddr(), err)
		return
	}
	c.SetDeadline(time.Time{})
	switch req.Command {
	case socks5.CmdConnect:
		v, opened, err := a.dial(ctx, host, req.Dest.String())
		if err != nil {
			socks5.WriteReply(c, socksReply(err), socks5.Addr{})
			log.printf("CONNECT %s from %s: %s", req.Dest, c.RemoteAddr(), log.reason(err))
			return
		}
		bound, _ := netip.ParseAddrPort(opened.LocalAddress)
		if err := socks5.WriteReply(c, socks5.RepSucceeded, socks5.AddrFrom(bound)); err != nil {
			v.cancel()
			return
		}
		log.printf("CONNECT %s from %s (%s -> %s)", req.Dest, c.RemoteAddr(), opened.LocalAddress, opened.RemoteAddress)
		if err := bridge(c, v); err != nil && ctx.Err() == nil {
			log.printf("CONNECT %s from %s: reset: %s", req.Dest, c.RemoteAddr(), log.reason(err))
		}
	case socks5.CmdUDPAssociate:
		a.socksUDP(ctx, host, c, log)
	default:
		socks5.WriteReply(c, socks5.RepCommandUnsupported, socks5.Addr{})
		log.printf("%s: command %d is not supported (only CONNECT and UDP ASSOCIATE)", c.RemoteAddr(), req.Command)
	}
}

// socksReply is the SOCKS reply code (RFC 1928 §6) for a failed Dial.
func socksReply(err error) byte {
	st, _ := status.FromError(err)
	msg := st.Message()
	switch {
	case st.Code() == codes.InvalidArgument: // not an address or a host of the lab
		return socks5.RepHostUnreachable
	case strings.Contains(msg, "connection refused"):
		return socks5.RepConnectionRefused
	case strings.Contains(msg, "network is unreachable"):
		return socks5.RepNetworkUnreachable
	case strings.Contains(msg, "no route to host"), strings.Contains(msg, "timed out"):
		return socks5.RepHostUnreachable
	}
	return socks5.RepGeneralFailure
}

// socksUDP serves a UDP association (RFC 1928 §7) on ctl, its control
// connection: datagrams from the client go out of host, and what host
// receives comes back to the client.
func (a *app) socksUDP(ctx context.Context, host string, ctl *net.TCPConn, log *connLog) {
	fail := func(err error) {
		socks5.WriteReply(ctl, socks5.RepGeneralFailure, socks5.Addr{})
		log.printf("UDP ASSOCIATE from %s: %s", ctl.RemoteAddr(), log.reason(err))
	}
	// §7: the relay's address is in the reply; it listens where the client
	// reached the proxy.
	local := ctl.LocalAddr().(*net.TCPAddr).AddrPort().Addr()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		fail(err)
		return
	}
	defer pc.Close()
	sc, err := a.sockets()
	if err != nil {
		fail(err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := sc.Datagrams(ctx)
	if err != nil {
		fail(err)
		return
	}
	st.Send(&labv1.DatagramsRequest{Event: &labv1.DatagramsRequest_Open{Open: &labv1.DatagramsOpen{Host: host}}})
	m, err := st.Recv()
	if err != nil {
		fail(err)
		return
	}
	relay := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := socks5.WriteReply(ctl, socks5.RepSucceeded, socks5.AddrFrom(relay)); err != nil {
		return
	}
	log.printf("UDP ASSOCIATE from %s: relay %s, from %s", ctl.RemoteAddr(), relay, m.GetOpened().GetLocalAddress())

	// §7: "A UDP association terminates when the TCP connection that the
	// UDP ASSOCIATE request arrived on terminates."
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		io.Copy(io.Discard, ctl)
		cancel()
		pc.Close()
	})
	clientIP := ctl.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	var client atomic.Pointer[netip.AddrPort] // learned from its datagrams
	var sent, received, dropped atomic.Uint64
	var labErr error
	wg.Go(func() {
		defer ctl.Close()
		defer pc.Close()
		for {
			m, err := st.Recv()
			if err != nil {
				if ctx.Err() == nil {
					labErr = err
				}
				return
			}
			d := m.GetDatagram()
			src, err := netip.ParseAddrPort(d.GetAddress())
			to := client.Load()
			if err != nil || to == nil {
				dropped.Add(1)
				continue
			}
			received.Add(1)
			pc.WriteToUDPAddrPort(socks5.AppendDatagram(nil, socks5.AddrFrom(src), d.GetData()), *to)
		}
	})
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		// §7: datagrams from any other address than the client's are
		// dropped; so are fragments, which this relay does not reassemble.
		dst, frag, data, err := socks5.ParseDatagram(buf[:n])
		if from.Addr().Unmap() != clientIP || err != nil || frag != 0 {
			dropped.Add(1)
			continue
		}
		client.Store(&from)
		if st.Send(&labv1.DatagramsRequest{Event: &labv1.DatagramsRequest_Datagram{Datagram: &labv1.Datagram{
			Address: dst.String(), Data: append([]byte(nil), data...),
		}}}) != nil {
			break
		}
		sent.Add(1)
	}
	cancel()
	ctl.Close()
	wg.Wait()
	end := "ended"
	if labErr != nil && !errors.Is(labErr, io.EOF) {
		end = "ended: " + log.reason(labErr)
	}
	log.printf("UDP ASSOCIATE from %s %s (%d datagrams sent, %d received, %d dropped)", ctl.RemoteAddr(), end, sent.Load(), received.Load(), dropped.Load())
}
