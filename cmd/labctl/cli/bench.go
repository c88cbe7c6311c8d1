package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

type benchOptions struct {
	bytes    string // as typed; parsed by parseSize
	duration time.Duration
	ipv4     bool
	ipv6     bool
}

func (a *app) newBenchCommand() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench HOST DEST [--bytes N | --time D] [-4|-6]",
		Short: "Measure TCP throughput from a virtual host to another, like iperf",
		Long: `Send TCP data from HOST to the discard service (port 9) of DEST and report
the throughput once DEST has received every byte. HOST is ID or LAB/ID; DEST
is an address or the name of a host in the same lab.

--bytes sends that many bytes: a number with an optional suffix, decimal (k,
M, G, T: 10M is 10,000,000) or binary (Ki, Mi, Gi, Ti: 100MiB is 104,857,600),
with or without a B. --time sends for that long. With neither, bench sends
for 10s.

While it runs, bench prints a line about every second: the time since the
start, the bytes DEST has acknowledged so far and the rate over the last
interval. Then it prints the result:

  sent 1.25 GB in 10.00s: 1.00 Gbit/s, 12 retransmissions

Sizes and rates are decimal (1 GB = 10^9 bytes, 1 Gbit/s = 10^9 bits per
second). -o json prints only the result, as {"bytes": N, "seconds": S,
"gbps": G, "retransmits": R}, with plain numbers.`,
		Example: `  labctl bench h1 h2
  labctl bench demo/h1 10.0.2.10 --bytes 100MiB
  labctl bench h1 h2 --time 30s -6 -o json`,
		Args:              exactArgs("HOST DEST", 2),
		ValidArgsFunction: a.completeHostsForArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBench(cmd.Context(), args[0], args[1], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.bytes, "bytes", "", "`N` bytes to send, e.g. 10M, 1G, 100MiB")
	f.DurationVar(&o.duration, "time", 0, "how long to send, e.g. 30s (default 10s)")
	f.BoolVarP(&o.ipv4, "ipv4", "4", false, "use IPv4 (when DEST is a host name)")
	f.BoolVarP(&o.ipv6, "ipv6", "6", false, "use IPv6 (when DEST is a host name)")
	return cmd
}

func (o *benchOptions) request(host, dest string) (*labv1.BenchRequest, error) {
	if o.ipv4 && o.ipv6 {
		return nil, errors.New("-4 and -6 cannot be used together")
	}
	if o.bytes != "" && o.duration != 0 {
		return nil, errors.New("--bytes and --time cannot be used together")
	}
	req := &labv1.BenchRequest{Host: host, Destination: dest, Ipv6: o.ipv6}
	if o.bytes != "" {
		n, err := parseSize(o.bytes)
		if err != nil {
			return nil, fmt.Errorf("--bytes: %w", err)
		}
		if n == 0 {
			return nil, errors.New("--bytes must be more than 0")
		}
		req.Bytes = n
	}
	if o.duration < 0 {
		return nil, fmt.Errorf("--time must be positive, not %s", o.duration)
	}
	if o.duration > 0 {
		req.Duration = durationpb.New(o.duration)
	}
	return req, nil
}

// benchJSON is bench's -o json result. Its field names are fixed by the
// issue that asked for bench; numbers are plain JSON numbers, not protojson's
// strings for 64-bit integers.
type benchJSON struct {
	Bytes       uint64  `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	Gbps        float64 `json:"gbps"`
	Retransmits uint64  `json:"retransmits"`
}

func (a *app) runBench(ctx context.Context, hostRef, dest string, o benchOptions) error {
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
	// No deadline: the server bounds the run (--time, or the bytes at the
	// network's pace); Ctrl-C cancels it.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := live.Bench(sctx, req)
	if err != nil {
		return err
	}
	var last *labv1.BenchProgress
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("labd ended the bench without a result")
		}
		if err != nil {
			return err
		}
		switch ev := resp.GetEvent().(type) {
		case *labv1.BenchResponse_Progress:
			if a.output == outputTable {
				fmt.Fprintln(a.stdout, benchProgressLine(last, ev.Progress))
			}
			last = ev.Progress
		case *labv1.BenchResponse_Result:
			return a.printBenchResult(ev.Result)
		}
	}
}

// benchProgressLine is one line of progress: the time since the start, the
// bytes acknowledged so far and the rate since the previous line (prev; nil
// for the first):
//
//	1.0s  123.4 MB  987 Mbit/s
func benchProgressLine(prev, p *labv1.BenchProgress) string {
	elapsed := p.GetElapsed().AsDuration()
	dt, db := elapsed, float64(p.GetBytes())
	if prev != nil {
		dt -= prev.GetElapsed().AsDuration()
		db -= float64(prev.GetBytes())
	}
	rate := "-"
	if dt > 0 {
		rate = formatBitRate(db * 8 / dt.Seconds())
	}
	return fmt.Sprintf("%5.1fs  %8s  %s", elapsed.Seconds(), formatBytes(p.GetBytes(), 1), rate)
}

func (a *app) printBenchResult(r *labv1.BenchResult) error {
	if a.output != outputTable {
		doc, err := json.Marshal(benchJSON{Bytes: r.GetBytes(), Seconds: r.GetSeconds(), Gbps: r.GetGbps(), Retransmits: r.GetRetransmits()})
		if err != nil {
			return err
		}
		return a.printDocument(doc)
	}
	word := "retransmissions"
	if r.GetRetransmits() == 1 {
		word = "retransmission"
	}
	_, err := fmt.Fprintf(a.stdout, "sent %s in %s: %s, %d %s\n",
		formatBytes(r.GetBytes(), 2), formatSeconds(r.GetSeconds()), formatBitRate(r.GetGbps()*1e9), r.GetRetransmits(), word)
	return err
}
