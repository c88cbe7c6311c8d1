package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

type pingOptions struct {
	count    int32
	interval float64 // seconds; 0: the server's default
	timeout  float64 // seconds; 0: the server's default
	ttl      uint32
	size     uint32
	ipv4     bool
	ipv6     bool
}

func (a *app) newPingCommand() *cobra.Command {
	var o pingOptions
	cmd := &cobra.Command{
		Use:   "ping HOST DEST",
		Short: "Send ICMP echo requests from a virtual host, like ping(8)",
		Long: `Send ICMP (or ICMPv6) echo requests from HOST to DEST and print the replies
as ping(8) does. HOST is ID or LAB/ID; DEST is an address or the name of a
host in the same lab. Without -c, ping runs until Ctrl-C, then prints its
statistics. The exit code is 0 when any reply came back, 1 otherwise.`,
		Example: `  labctl ping h1 10.0.2.10 -c 3
  labctl ping demo/h1 h2 -6 -i 0.2`,
		Args:              exactArgs("HOST DEST", 2),
		ValidArgsFunction: a.completeHostsForArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runPing(cmd.Context(), args[0], args[1], o)
		},
	}
	f := cmd.Flags()
	f.Int32VarP(&o.count, "count", "c", 0, "stop after this many probes (default: until interrupted)")
	f.Float64VarP(&o.interval, "interval", "i", 0, "seconds between probes (default 1)")
	f.Float64VarP(&o.timeout, "wait", "W", 0, "seconds to wait for each reply (default 1)")
	f.Uint32VarP(&o.ttl, "ttl", "t", 0, "IP time to live / hop limit (default 64)")
	f.Uint32VarP(&o.size, "size", "s", 0, "echo payload bytes (default 56)")
	f.BoolVarP(&o.ipv4, "ipv4", "4", false, "use IPv4 (when DEST is a host name)")
	f.BoolVarP(&o.ipv6, "ipv6", "6", false, "use IPv6 (when DEST is a host name)")
	return cmd
}

func (o *pingOptions) request(host, dest string) (*labv1.PingRequest, error) {
	if o.ipv4 && o.ipv6 {
		return nil, errors.New("-4 and -6 cannot be used together")
	}
	if o.count < 0 {
		return nil, fmt.Errorf("bad number of packets to transmit: %d", o.count)
	}
	if o.ttl > 255 {
		return nil, fmt.Errorf("ttl %d out of range (1-255)", o.ttl)
	}
	interval, err := seconds("-i", o.interval)
	if err != nil {
		return nil, err
	}
	timeout, err := seconds("-W", o.timeout)
	if err != nil {
		return nil, err
	}
	return &labv1.PingRequest{
		Host:        host,
		Destination: dest,
		Count:       o.count,
		Interval:    interval,
		Timeout:     timeout,
		Ttl:         o.ttl,
		Size:        o.size,
		Ipv6:        o.ipv6,
	}, nil
}

// seconds turns a flag in seconds (0.2) into a Duration; 0 leaves it unset.
func seconds(flag string, s float64) (*durationpb.Duration, error) {
	if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("%s: bad number of seconds: %g", flag, s)
	}
	if s == 0 {
		return nil, nil
	}
	return durationpb.New(time.Duration(s * float64(time.Second))), nil
}

func (a *app) runPing(ctx context.Context, hostRef, dest string, o pingOptions) error {
	host, err := a.resolve(ctx, collHosts, hostRef)
	if err != nil {
		return err
	}
	req, err := o.request(host, dest)
	if err != nil {
		return err
	}
	live, err := a.live()
	if err != nil {
		return err
	}
	// The stream has its own context so that it is cancelled as soon as we
	// stop reading, whatever the reason.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := live.Ping(sctx, req)
	if err != nil {
		return err
	}

	p := pinger{w: a.stdout, host: shortID(host), typed: dest, display: dest}
	var start time.Time
	var streamErr error
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() == nil {
				streamErr = err
			}
			// Interrupted (Ctrl-C): stop and summarize, as ping(8) does.
			break
		}
		if s := resp.GetStarted(); s != nil && p.started == nil {
			start = a.now()
		}
		p.event(resp)
	}
	cancel()

	if p.started == nil && p.transmitted == 0 {
		if streamErr != nil {
			return streamErr
		}
		if ctx.Err() != nil {
			return &exitError{code: 1}
		}
		return errors.New("labd ended the ping before it started")
	}
	var elapsed time.Duration
	if !start.IsZero() {
		elapsed = a.now().Sub(start)
	}
	p.summary(elapsed)
	if streamErr != nil {
		return streamErr
	}
	if p.received == 0 {
		return &exitError{code: 1}
	}
	return nil
}

// pinger prints a ping stream as iputils ping(8) does and keeps its
// statistics.
type pinger struct {
	w       io.Writer
	host    string // short id of the sending host
	typed   string // DEST as typed
	display string // the name ping(8) shows: DEST as typed, or the address
	started *labv1.PingStarted

	transmitted int64 // probes seen: replies, errors and timeouts
	received    int64
	dups        int64
	errors      int64
	replied     seqWindow

	// RTT statistics over replies and duplicates, in nanoseconds (Welford).
	n        int64
	min, max time.Duration
	mean, m2 float64
}

func (p *pinger) event(resp *labv1.PingResponse) {
	switch ev := resp.GetEvent().(type) {
	case *labv1.PingResponse_Started:
		p.start(ev.Started)
	case *labv1.PingResponse_Reply:
		p.reply(ev.Reply)
	case *labv1.PingResponse_Error:
		p.transmitted++
		p.errors++
		from := ev.Error.GetFrom()
		if from == "" {
			from = p.started.GetSource()
		}
		if from == "" {
			from = p.host
		}
		fmt.Fprintf(p.w, "From %s icmp_seq=%d %s\n", from, ev.Error.GetSeq(), ev.Error.GetMessage())
	case *labv1.PingResponse_Timeout:
		// ping(8) prints nothing for a probe that got no answer.
		p.transmitted++
	}
}

// start prints ping(8)'s first line; IPv6 has its own shape there.
//
//	PING 10.0.2.10 (10.0.2.10) from 10.0.1.10 h1: 56(84) bytes of data.
//	PING fd00:0:0:2::a(fd00:0:0:2::a) from fd00:0:0:1::a h1: 56 data bytes
func (p *pinger) start(s *labv1.PingStarted) {
	p.started = s
	if _, err := netip.ParseAddr(p.typed); err == nil && s.GetDestination() != "" {
		p.display = s.GetDestination()
	}
	from := ""
	if s.GetSource() != "" {
		from = fmt.Sprintf("from %s %s: ", s.GetSource(), p.host)
	}
	if addr, err := netip.ParseAddr(s.GetDestination()); err == nil && addr.Is6() && !addr.Is4In6() {
		fmt.Fprintf(p.w, "PING %s(%s) %s%d data bytes\n", p.display, s.GetDestination(), from, s.GetSize())
		return
	}
	fmt.Fprintf(p.w, "PING %s (%s) %s%d(%d) bytes of data.\n", p.display, s.GetDestination(), from, s.GetSize(), s.GetPacketSize())
}

func (p *pinger) reply(r *labv1.PingReply) {
	dup := p.replied.seen(r.GetSeq())
	if dup {
		p.dups++
	} else {
		p.transmitted++
		p.received++
	}
	rtt := r.GetRtt().AsDuration()
	p.addRTT(rtt)
	suffix := ""
	if dup {
		suffix = " (DUP!)"
	}
	fmt.Fprintf(p.w, "%d bytes from %s: icmp_seq=%d ttl=%d time=%s ms%s\n",
		r.GetBytes(), r.GetFrom(), r.GetSeq(), r.GetTtl(), ms(rtt), suffix)
}

func (p *pinger) addRTT(d time.Duration) {
	p.n++
	if p.n == 1 || d < p.min {
		p.min = d
	}
	if p.n == 1 || d > p.max {
		p.max = d
	}
	x := float64(d)
	delta := x - p.mean
	p.mean += delta / float64(p.n)
	p.m2 += delta * (x - p.mean)
}

// summary prints ping(8)'s statistics:
//
//	--- 10.0.2.10 ping statistics ---
//	3 packets transmitted, 1 received, +2 errors, 66.6667% packet loss, time 2003ms
//	rtt min/avg/max/mdev = 0.101/0.120/0.140/0.016 ms
//
// Loss is printed with C's %g of a float, as iputils does; mdev is the
// population standard deviation of the RTTs (iputils computes the same in
// integer microseconds; we keep the precision the server sends).
func (p *pinger) summary(elapsed time.Duration) {
	fmt.Fprintf(p.w, "\n--- %s ping statistics ---\n", p.display)
	fmt.Fprintf(p.w, "%d packets transmitted, %d received", p.transmitted, p.received)
	if p.dups > 0 {
		fmt.Fprintf(p.w, ", +%d duplicates", p.dups)
	}
	if p.errors > 0 {
		fmt.Fprintf(p.w, ", +%d errors", p.errors)
	}
	if p.transmitted > 0 {
		loss := float32(float64(p.transmitted-p.received) * 100 / float64(p.transmitted))
		fmt.Fprintf(p.w, ", %s%% packet loss, time %dms", cG(float64(loss)), (elapsed+500*time.Microsecond)/time.Millisecond)
	}
	fmt.Fprintln(p.w)
	if p.received > 0 && p.n > 0 {
		mdev := time.Duration(math.Sqrt(p.m2 / float64(p.n)))
		fmt.Fprintf(p.w, "rtt min/avg/max/mdev = %s/%s/%s/%s ms\n",
			ms(p.min), ms(time.Duration(math.Round(p.mean))), ms(p.max), ms(mdev))
	}
}

// cG formats x as C's printf("%g") does: six significant digits, no
// trailing zeros.
func cG(x float64) string {
	return fmt.Sprintf("%.6g", x)
}

// ms is a duration in milliseconds with three decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond))
}

// seqWindow remembers which of the last 65536 sequence numbers got a reply,
// to spot duplicates in a ping that may run forever (iputils keeps the same
// 64 Ki-bit table).
type seqWindow struct {
	bits [1 << 16 / 64]uint64
	hi   uint32
	any  bool
}

// seen marks seq as replied to and reports whether it already was.
func (w *seqWindow) seen(seq uint32) bool {
	switch {
	case !w.any:
		w.any = true
		w.hi = seq
	case seq > w.hi:
		// Forget what the window slides over.
		for s, n := w.hi+1, 0; n < 1<<16 && s != seq; s, n = s+1, n+1 {
			w.clear(s)
		}
		w.clear(seq)
		w.hi = seq
	case w.hi-seq >= 1<<16:
		return false // older than the window: cannot tell
	}
	i, bit := (seq&0xffff)/64, uint64(1)<<(seq%64)
	old := w.bits[i]&bit != 0
	w.bits[i] |= bit
	return old
}

func (w *seqWindow) clear(seq uint32) {
	w.bits[(seq&0xffff)/64] &^= uint64(1) << (seq % 64)
}
