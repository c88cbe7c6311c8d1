package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// exposeDialTimeout bounds connecting to the real service.
const exposeDialTimeout = 5 * time.Second

func (a *app) newExposeCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "expose HOST:PORT --to ADDRESS:PORT",
		Short: "Carry connections made in the lab to HOST:PORT to a real service",
		Long: `Listen on TCP port PORT of virtual host HOST and carry every connection
made to it in the lab to a real service on this machine (or any address
this machine reaches), so that virtual hosts talk to real programs: a
student's own server, a real database, ... HOST is ID or LAB/ID.

Each connection is logged on standard error: who connected in the lab, and
the address the real service sees it coming from (labctl's end of the
real connection). A half-close (FIN) or a reset on either side passes to
the other. When the real service cannot be reached, the connection in the
lab is reset.

Before listening, labctl checks that something answers at --to, and labd
that PORT of HOST is free: otherwise it exits 1 with the reason. Ctrl-C
stops listening and resets the connections still open.`,
		Example: `  python3 -m http.server 9000 --bind 127.0.0.1 &
  labctl expose h2:80 --to 127.0.0.1:9000 &
  labctl fetch h1 http://h2/`,
		Args:              exactArgs("HOST:PORT", 1),
		ValidArgsFunction: a.completeHostsForArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runExpose(cmd.Context(), args[0], to)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "real service to carry connections to, `ADDRESS:PORT` (required)")
	return cmd
}

func (a *app) runExpose(ctx context.Context, target, to string) error {
	i := strings.LastIndexByte(target, ':')
	if i < 0 {
		return fmt.Errorf("%q is not HOST:PORT", target)
	}
	port, err := strconv.ParseUint(target[i+1:], 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("port %q in %q is not a port number (1-65535)", target[i+1:], target)
	}
	if to == "" {
		return errors.New("--to ADDRESS:PORT is required: where to carry the connections")
	}
	if _, _, err := net.SplitHostPort(to); err != nil {
		return fmt.Errorf("--to %q is not ADDRESS:PORT", to)
	}
	host, err := a.resolve(ctx, collHosts, target[:i])
	if err != nil {
		return err
	}
	probe, err := net.DialTimeout("tcp", to, exposeDialTimeout)
	if err != nil {
		return fmt.Errorf("--to %s: nothing answers: %s", to, dialReason(err))
	}
	probe.Close()
	sc, err := a.sockets()
	if err != nil {
		return err
	}
	st, err := sc.Expose(ctx, &labv1.ExposeRequest{Host: host, Port: uint32(port)})
	if err != nil {
		return err
	}
	m, err := st.Recv()
	if err != nil {
		return err
	}
	name := shortID(host) + ":" + strconv.Itoa(int(port))
	fmt.Fprintf(a.stdout, "Exposing %s (listening on %s) -> %s\n", name, m.GetListening().GetAddress(), to)
	log := &connLog{a: a}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		m, err := st.Recv()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		c := m.GetConnection()
		if c == nil {
			continue
		}
		wg.Go(func() { a.exposeConn(ctx, host, name, to, c, log) })
	}
}

// exposeConn carries connection c to the real service at to.
func (a *app) exposeConn(ctx context.Context, host, name, to string, c *labv1.ExposeConnection, log *connLog) {
	d := net.Dialer{Timeout: exposeDialTimeout}
	real, err := d.DialContext(ctx, "tcp", to)
	v, verr := a.accept(ctx, host, c.Id, err != nil)
	if err != nil {
		log.printf("%s -> %s: %s unreachable, reset: %s", c.RemoteAddress, name, to, dialReason(err))
		return
	}
	if verr != nil {
		real.(*net.TCPConn).SetLinger(0)
		real.Close()
		log.printf("%s -> %s: %s", c.RemoteAddress, name, log.reason(verr))
		return
	}
	log.printf("Connection from %s to %s -> %s, which sees it from %s", c.RemoteAddress, name, to, real.LocalAddr())
	// Ctrl-C resets the connections still open.
	stop := context.AfterFunc(ctx, v.cancel)
	defer stop()
	if err := bridge(real.(*net.TCPConn), v); err != nil && ctx.Err() == nil {
		log.printf("%s -> %s: reset: %s", c.RemoteAddress, name, log.reason(err))
	}
}

// accept takes connection id of host's exposed port, or resets it (reject).
func (a *app) accept(ctx context.Context, host string, id uint64, reject bool) (*virtualConn[labv1.AcceptRequest, *labv1.AcceptResponse], error) {
	sc, err := a.sockets()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	st, err := sc.Accept(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	v := &virtualConn[labv1.AcceptRequest, *labv1.AcceptResponse]{stream: st, cancel: cancel, data: func(b []byte) *labv1.AcceptRequest {
		return &labv1.AcceptRequest{Event: &labv1.AcceptRequest_Data{Data: b}}
	}}
	first := &labv1.AcceptRequest{Event: &labv1.AcceptRequest_Open{Open: &labv1.AcceptOpen{Host: host, Connection: id, Reject: reject}}}
	if reject {
		defer cancel()
		st.Send(first)
		st.CloseSend()
		_, err := st.Recv()
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return nil, err
	}
	if _, err := v.open(first); err != nil {
		cancel()
		return nil, err
	}
	return v, nil
}

// dialReason is a failed real dial's reason, without the addresses.
func dialReason(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return strings.TrimPrefix(err.Error(), "connect: ")
}
