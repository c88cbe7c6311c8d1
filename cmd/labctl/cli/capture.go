package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/labnet-dev/labnet/format/capture"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// captureDrain is how long labctl capture keeps reading after Ctrl-C.
const captureDrain = 500 * time.Millisecond

type captureOptions struct {
	write    string
	read     string
	count    int
	duration time.Duration
	proto    string
	port     int
	host     string
	ladder   bool
	snaplen  int
	width    int
}

func (a *app) newCaptureCommand() *cobra.Command {
	var o captureOptions
	cmd := &cobra.Command{
		Use:   "capture TARGET... [-w FILE] [-c N] [--duration D] [--proto P] [--port N] [--host ADDR] [--ladder]",
		Short: "Watch, save or draw the packets of virtual interfaces, like tcpdump",
		Long: `Capture every packet that the TARGETs' interfaces send, receive or drop.
A TARGET is HOST (all its interfaces), HOST:IFACE, or net/NETWORK (every
interface on that network, on whichever labd runs it); HOST is ID or LAB/ID.
A network's interfaces on a node that is away or cannot be reached are
listed as "not captured: h3:eth0 (node c unreachable: ...)" and the capture
goes on with the others; a HOST on such a node fails the capture.

By default each packet is printed as one line, like tcpdump: the time, the
interface and direction, addresses and ports, TCP flags, relative sequence
and acknowledgement numbers, window and length. A packet that went no
further says why: "-- DROPPED (impairment loss)", "(TTL exceeded)", "(port
unreachable)", "(receive queue full)".

-w FILE saves a pcapng file for Wireshark or tshark instead (one pcapng
interface per captured interface, named host:iface, nanosecond times, drops
as packet comments); -w - writes it to stdout:

  labctl capture h1 -w - | wireshark -k -i -

--ladder draws each flow as a sequence diagram between its two ends, one
arrow per packet, with retransmissions, duplicates and drops marked; -r FILE
reads a saved capture instead of the lab (with or without --ladder).

The capture ends after -c packets, after --duration, or on Ctrl-C. A reader
too slow for the lab loses packets from the capture (never from the lab):
the count is reported at the end.`,
		Example: `  labctl capture h1
  labctl capture h1:eth0 r1 --proto tcp --port 80
  labctl capture net/lan1 -w lan1.pcapng --duration 30s
  labctl capture h1 --ladder -c 20
  labctl capture --ladder -r lan1.pcapng`,
		ValidArgsFunction: a.completeHostsForArgs(64),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.read != "" {
				if len(args) > 0 {
					return errors.New("-r reads a file: give no TARGET")
				}
				if o.write != "" {
					return errors.New("-r and -w cannot be used together")
				}
				return a.readCapture(o)
			}
			if len(args) == 0 {
				return errors.New("name at least one TARGET (HOST, HOST:IFACE or net/NETWORK)")
			}
			return a.runCapture(cmd.Context(), args, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.write, "write", "w", "", "write pcapng to `FILE` (- for stdout)")
	f.StringVarP(&o.read, "read", "r", "", "read a pcapng `FILE` instead of capturing")
	f.IntVarP(&o.count, "count", "c", 0, "stop after `N` packets")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long, e.g. 30s")
	f.StringVar(&o.proto, "proto", "", "only tcp, udp or icmp")
	f.IntVar(&o.port, "port", 0, "only packets from or to this port")
	f.StringVar(&o.host, "host", "", "only packets from or to this IP address")
	f.BoolVar(&o.ladder, "ladder", false, "draw flows as sequence diagrams")
	f.IntVar(&o.snaplen, "snaplen", 0, "keep at most `N` bytes of each packet (0: all)")
	f.IntVar(&o.width, "width", 100, "width of --ladder diagrams in columns")
	return cmd
}

func (o *captureOptions) filter() (capture.Filter, error) {
	var f capture.Filter
	p, err := capture.ParseProto(o.proto)
	if err != nil {
		return f, fmt.Errorf("--proto: %w", err)
	}
	f.Proto = p
	if o.port < 0 || o.port > 65535 {
		return f, fmt.Errorf("--port: %d is not a port", o.port)
	}
	f.Port = uint16(o.port)
	if o.host != "" {
		a, err := netip.ParseAddr(o.host)
		if err != nil {
			return f, fmt.Errorf("--host: %q is not an IP address", o.host)
		}
		f.Host = a
	}
	if o.count < 0 {
		return f, fmt.Errorf("-c must be positive, not %d", o.count)
	}
	if o.duration < 0 {
		return f, fmt.Errorf("--duration must be positive, not %s", o.duration)
	}
	if o.snaplen < 0 {
		return f, fmt.Errorf("--snaplen must be positive, not %d", o.snaplen)
	}
	return f, nil
}

// captureOutput prints or saves packets as they come.
type captureOutput struct {
	a      *app
	pcap   *capture.Writer
	file   io.Closer
	dec    *capture.Decoder
	ladder *capture.Ladder
	live   bool // ladder lines as they come (else Render at the end)
	n      int
}

func (a *app) newCaptureOutput(o captureOptions, live bool) (*captureOutput, error) {
	out := &captureOutput{a: a, live: live}
	switch o.write {
	case "":
	case "-":
		w, err := capture.NewWriter(a.stdout, o.snaplen)
		if err != nil {
			return nil, err
		}
		out.pcap = w
	default:
		f, err := os.Create(o.write)
		if err != nil {
			return nil, err
		}
		w, err := capture.NewWriter(f, o.snaplen)
		if err != nil {
			f.Close()
			return nil, err
		}
		out.pcap, out.file = w, f
	}
	if o.ladder {
		if o.write == "-" {
			return nil, errors.New("--ladder and -w - both want stdout")
		}
		out.ladder = capture.NewLadder()
		out.ladder.Width = o.width
	} else if o.write == "" {
		out.dec = capture.NewDecoder()
	}
	return out, nil
}

func (c *captureOutput) iface(name, node string, addrs []netip.Addr) error {
	if c.ladder != nil {
		c.ladder.AddInterface(name, addrs)
	}
	if c.pcap != nil {
		desc := ""
		if node != "" {
			desc = "node " + node
		}
		return c.pcap.AddInterface(name, desc, addrs...)
	}
	return nil
}

func (c *captureOutput) packet(p *capture.Packet) error {
	c.n++
	if c.pcap != nil {
		if err := c.pcap.WritePacket(p); err != nil {
			return err
		}
	}
	if c.dec != nil {
		fmt.Fprintln(c.a.stdout, c.dec.Line(p))
	}
	if c.ladder != nil && c.live {
		for _, s := range c.ladder.Add(p) {
			fmt.Fprintln(c.a.stdout, s)
		}
	} else if c.ladder != nil {
		c.ladder.Add(p)
	}
	return nil
}

func (c *captureOutput) close() error {
	if c.ladder != nil && !c.live {
		fmt.Fprint(c.a.stdout, c.ladder.Render())
	}
	var err error
	if c.pcap != nil {
		err = c.pcap.Flush()
	}
	if c.file != nil {
		err = errors.Join(err, c.file.Close())
	}
	return err
}

func (a *app) readCapture(o captureOptions) error {
	flt, err := o.filter()
	if err != nil {
		return err
	}
	f, err := os.Open(o.read)
	if err != nil {
		return err
	}
	defer f.Close()
	out, err := a.newCaptureOutput(o, false)
	if err != nil {
		return err
	}
	r := capture.NewReader(f)
	r.OnInterface = func(name string, addrs []netip.Addr) { _ = out.iface(name, "", addrs) }
	for o.count == 0 || out.n < o.count {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", o.read, err)
		}
		if !flt.Match(p.Data) {
			continue
		}
		if err := out.packet(p); err != nil {
			return err
		}
	}
	return out.close()
}

// captureRequest turns the targets into one lab and its target list.
func (a *app) captureRequest(ctx context.Context, args []string, o captureOptions) (*labv1.CaptureRequest, error) {
	if _, err := o.filter(); err != nil {
		return nil, err
	}
	req := &labv1.CaptureRequest{Protocol: o.proto, Port: uint32(o.port), Address: o.host, Count: uint32(o.count), Snaplen: uint32(o.snaplen)}
	if o.duration > 0 {
		req.Duration = durationpb.New(o.duration)
	}
	for _, t := range args {
		var name, target string
		var err error
		if netRef, ok := strings.CutPrefix(t, "net/"); ok {
			name, err = a.resolve(ctx, collNetworks, netRef)
			target = "net/" + shortID(name)
		} else {
			hostRef, nic, hasNIC := strings.Cut(t, ":")
			name, err = a.resolve(ctx, collHosts, hostRef)
			target = shortID(name)
			if hasNIC {
				if nic == "" {
					return nil, fmt.Errorf("target %q: empty interface name", t)
				}
				target += ":" + nic
			}
		}
		if err != nil {
			return nil, err
		}
		lab := labName(labOf(name))
		if req.Lab != "" && req.Lab != lab {
			return nil, fmt.Errorf("targets are in different labs (%s and %s): capture one lab at a time", shortID(req.Lab), shortID(lab))
		}
		req.Lab = lab
		req.Targets = append(req.Targets, target)
	}
	return req, nil
}

func (a *app) runCapture(ctx context.Context, args []string, o captureOptions) error {
	req, err := a.captureRequest(ctx, args, o)
	if err != nil {
		return err
	}
	out, err := a.newCaptureOutput(o, true)
	if err != nil {
		return err
	}
	if out.ladder != nil {
		// Name every host of the lab in the diagrams, captured or not.
		if hosts, err := a.listHosts(ctx, req.Lab); err == nil {
			for _, h := range hosts {
				for _, ifc := range h.Interfaces {
					var addrs []netip.Addr
					for _, s := range []string{ifc.Ipv4, ifc.Ipv6} {
						if p, err := netip.ParsePrefix(s); err == nil {
							addrs = append(addrs, p.Addr())
						}
					}
					out.ladder.AddInterface(shortID(h.Name)+":"+ifc.Name, addrs)
				}
			}
		}
	}
	if err := a.connect(); err != nil {
		out.close()
		return err
	}
	// On Ctrl-C the stream stays open a moment longer: the server holds
	// packets back briefly to send them in time order (longer for other
	// nodes' packets), and those were captured before the interrupt.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			time.Sleep(captureDrain)
			cancel()
		case <-sctx.Done():
		}
	}()
	stream, err := labv1.NewCaptureServiceClient(a.conn).Capture(sctx, req)
	if err != nil {
		out.close()
		return err
	}
	var lost uint64
	var runErr error
	started := false
	for {
		m, err := stream.Recv()
		if err != nil {
			if err != io.EOF && (ctx.Err() == nil || status.Code(err) != codes.Canceled) {
				runErr = err
			}
			break
		}
		switch ev := m.Event.(type) {
		case *labv1.CaptureResponse_Started:
			started = true
			var names []string
			for _, ci := range ev.Started.Interfaces {
				var addrs []netip.Addr
				for _, s := range ci.Addresses {
					if ad, err := netip.ParseAddr(s); err == nil {
						addrs = append(addrs, ad)
					}
				}
				names = append(names, ci.Name)
				if err := out.iface(ci.Name, ci.Node, addrs); err != nil {
					runErr = err
				}
			}
			fmt.Fprintf(a.stderr, "capturing on %s\n", strings.Join(names, ", "))
			for _, u := range ev.Started.Unreachable {
				fmt.Fprintf(a.stderr, "not captured: %s (%s)\n", u.Name, u.Reason)
			}
		case *labv1.CaptureResponse_Packets:
			for _, m := range ev.Packets.Packets {
				p := capture.FromProto(m)
				if err := out.packet(&p); err != nil {
					runErr = err
					break
				}
			}
			if out.pcap != nil && out.file == nil && runErr == nil {
				// Streaming to another program (wireshark -k -i -): it
				// should see each batch now.
				runErr = out.pcap.Flush()
			}
		case *labv1.CaptureResponse_Stats:
			lost = ev.Stats.Lost
		}
		if runErr != nil {
			break
		}
	}
	cancel()
	if err := out.close(); err != nil && runErr == nil {
		runErr = err
	}
	if started {
		fmt.Fprintf(a.stderr, "%d packets captured", out.n)
		if lost > 0 {
			fmt.Fprintf(a.stderr, ", %d lost by the capture (a reader slower than the lab)", lost)
		}
		fmt.Fprintln(a.stderr)
	}
	return runErr
}
