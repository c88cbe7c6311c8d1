package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

// DefaultForwardAddress is where port-forward and socks listen.
const DefaultForwardAddress = "127.0.0.1"

// portPair is one LOCAL:REMOTE of port-forward.
type portPair struct{ local, remote uint16 }

func (a *app) newPortForwardCommand() *cobra.Command {
	var address string
	cmd := &cobra.Command{
		Use:   "port-forward HOST [LOCAL:]REMOTE... [--address 127.0.0.1]",
		Short: "Forward local ports to ports of a virtual host",
		Long: `Listen on local TCP ports and carry each connection to a port of HOST,
as kubectl port-forward does: the connection in the lab is made by HOST's
own TCP stack to its own address, so HOST's services (or a program that
serves through labctl expose) answer it.

Each argument is REMOTE (the same port locally), LOCAL:REMOTE, or :REMOTE
(a free local port, printed). Many connections can be open at once; a
half-close (FIN) or a reset on either side passes to the other. Ctrl-C
stops listening and resets the connections still open.

Before listening, labctl checks that HOST exists and that something
listens on each REMOTE port: otherwise it exits 1 with the reason.`,
		Example: `  labctl port-forward h2 8080:80 &
  curl http://127.0.0.1:8080/bytes/1000
  labctl port-forward demo/h2 :80 7 --address 127.0.0.2`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("%s needs HOST and at least one [LOCAL:]REMOTE port (got %d argument%s)", cmd.CommandPath(), len(args), plural(len(args)))
			}
			return nil
		},
		ValidArgsFunction: a.completeHostsForArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runPortForward(cmd.Context(), args[0], args[1:], address)
		},
	}
	cmd.Flags().StringVar(&address, "address", DefaultForwardAddress, "local `ADDRESS` to listen on")
	return cmd
}

// parsePortPair parses [LOCAL:]REMOTE.
func parsePortPair(s string) (portPair, error) {
	local, remote, found := strings.Cut(s, ":")
	if !found {
		local, remote = s, s
	}
	port := func(p string, zero bool) (uint16, error) {
		if p == "" && zero {
			return 0, nil
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 && !zero {
			return 0, fmt.Errorf("port %q in %q is not a port number (1-65535)", p, s)
		}
		return uint16(n), nil
	}
	l, err := port(local, true)
	if err != nil {
		return portPair{}, err
	}
	r, err := port(remote, false)
	if err != nil {
		return portPair{}, err
	}
	return portPair{local: l, remote: r}, nil
}

func (a *app) runPortForward(ctx context.Context, hostRef string, specs []string, address string) error {
	var pairs []portPair
	for _, s := range specs {
		p, err := parsePortPair(s)
		if err != nil {
			return err
		}
		pairs = append(pairs, p)
	}
	host, err := a.resolve(ctx, collHosts, hostRef)
	if err != nil {
		return err
	}
	short := shortID(host)
	// Something must listen on every remote port: try each once.
	for _, p := range pairs {
		v, _, err := a.dial(ctx, host, net.JoinHostPort(short, strconv.Itoa(int(p.remote))))
		if err != nil {
			return err
		}
		v.stream.CloseSend()
		v.cancel()
	}
	var listeners []*net.TCPListener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, p := range pairs {
		l, err := listenLocal(fmt.Sprintf("port %d", p.remote), net.JoinHostPort(address, strconv.Itoa(int(p.local))))
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
		fmt.Fprintf(a.stdout, "Forwarding from %s -> %s:%d\n", l.Addr(), short, p.remote)
	}
	log := &connLog{a: a}
	g, ctx := errgroup.WithContext(ctx)
	for i, l := range listeners {
		remote := net.JoinHostPort(short, strconv.Itoa(int(pairs[i].remote)))
		g.Go(func() error {
			return serve(ctx, l, func(c *net.TCPConn) {
				v, opened, err := a.dial(ctx, host, remote)
				if err != nil {
					log.printf("%s -> %s: %s", c.RemoteAddr(), remote, log.reason(err))
					c.SetLinger(0)
					c.Close()
					return
				}
				log.printf("Handling connection %s -> %s (%s -> %s)", c.RemoteAddr(), remote, opened.LocalAddress, opened.RemoteAddress)
				if err := bridge(c, v); err != nil && ctx.Err() == nil {
					log.printf("%s -> %s: reset: %s", c.RemoteAddr(), remote, log.reason(err))
				}
			})
		})
	}
	return g.Wait()
}
