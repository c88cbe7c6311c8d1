package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

type tracerouteOptions struct {
	maxHops uint32
	probes  uint32
	wait    float64 // seconds; 0: the server's default
	ipv4    bool
	ipv6    bool
}

func (a *app) newTracerouteCommand() *cobra.Command {
	var o tracerouteOptions
	cmd := &cobra.Command{
		Use:   "traceroute HOST DEST",
		Short: "Show the routers on the way from a virtual host, like traceroute(8)",
		Long: `Send echo requests with growing TTL / hop limit from HOST to DEST and print
who answers at each hop, as traceroute(8) does. HOST is ID or LAB/ID; DEST is
an address or the name of a host in the same lab. The exit code is 0 when the
destination was reached, 1 otherwise.`,
		Example: `  labctl traceroute h1 10.0.2.10
  labctl traceroute demo/h1 h2 -6 -q 1`,
		Aliases:           []string{"tracert"},
		Args:              exactArgs("HOST DEST", 2),
		ValidArgsFunction: a.completeHostsForArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runTraceroute(cmd.Context(), args[0], args[1], o)
		},
	}
	f := cmd.Flags()
	f.Uint32VarP(&o.maxHops, "max-hops", "m", 0, "largest TTL / hop limit to try (default 30)")
	f.Uint32VarP(&o.probes, "queries", "q", 0, "probes per hop (default 3)")
	f.Float64VarP(&o.wait, "wait", "w", 0, "seconds to wait for each probe (default 1)")
	f.BoolVarP(&o.ipv4, "ipv4", "4", false, "use IPv4 (when DEST is a host name)")
	f.BoolVarP(&o.ipv6, "ipv6", "6", false, "use IPv6 (when DEST is a host name)")
	return cmd
}

func (a *app) runTraceroute(ctx context.Context, hostRef, dest string, o tracerouteOptions) error {
	if o.ipv4 && o.ipv6 {
		return errors.New("-4 and -6 cannot be used together")
	}
	if o.maxHops > 255 {
		return fmt.Errorf("max hops cannot be more than 255, not %d", o.maxHops)
	}
	wait, err := seconds("-w", o.wait)
	if err != nil {
		return err
	}
	host, err := a.resolve(ctx, collHosts, hostRef)
	if err != nil {
		return err
	}
	live, err := a.live()
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := live.Traceroute(sctx, &labv1.TracerouteRequest{
		Host:        host,
		Destination: dest,
		MaxHops:     o.maxHops,
		Probes:      o.probes,
		Timeout:     wait,
		Ipv6:        o.ipv6,
	})
	if err != nil {
		return err
	}
	reached := false
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				// Interrupted: traceroute(8) just stops.
				return &exitError{code: 1}
			}
			return err
		}
		switch ev := resp.GetEvent().(type) {
		case *labv1.TracerouteResponse_Started:
			s := ev.Started
			display := dest
			if _, err := netip.ParseAddr(dest); err == nil && s.GetDestination() != "" {
				display = s.GetDestination()
			}
			maxHops := s.GetMaxHops()
			if maxHops == 0 {
				maxHops = o.maxHops
			}
			if maxHops == 0 {
				maxHops = 30
			}
			fmt.Fprintf(a.stdout, "traceroute to %s (%s), %d hops max\n", display, s.GetDestination(), maxHops)
		case *labv1.TracerouteResponse_Hop:
			fmt.Fprintln(a.stdout, hopLine(ev.Hop))
			reached = ev.Hop.GetReached()
		}
	}
	if !reached {
		return &exitError{code: 1}
	}
	return nil
}

// hopLine prints one hop as traceroute(8) -n does:
//
//	" 1  10.0.1.1  0.105 ms  0.090 ms  0.088 ms"
//	" 2  10.0.2.1  0.201 ms *  10.0.3.1  0.250 ms !H"
//	" 3  * * *"
//
// An address is printed before a probe's time when it is the hop's first
// answer or differs from the previous answer.
func hopLine(h *labv1.TracerouteHop) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%2d ", h.GetTtl())
	prev := ""
	for _, p := range h.GetProbes() {
		if p.GetFrom() == "" {
			b.WriteString(" *")
			continue
		}
		if p.GetFrom() != prev {
			b.WriteString(" " + p.GetFrom())
			prev = p.GetFrom()
		}
		fmt.Fprintf(&b, "  %s ms", ms(p.GetRtt().AsDuration()))
		if p.GetAnnotation() != "" {
			b.WriteString(" " + p.GetAnnotation())
		}
	}
	return b.String()
}
