package cli

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

type connectionsOptions struct {
	tcp, udp  bool
	listening bool
	info      bool
	absolute  bool
}

func (a *app) newConnectionsCommand() *cobra.Command {
	var o connectionsOptions
	cmd := &cobra.Command{
		Use:   "connections HOST [--tcp|--udp] [-l] [-i [--absolute]]",
		Short: "List a virtual host's TCP connections and UDP sockets, like ss -tuan",
		Long: `List the TCP connections (and listeners) and UDP sockets of HOST, as
"ss -tuan" does. HOST is ID or LAB/ID. SEND-Q is the bytes written but not yet
acknowledged, RECV-Q the bytes received but not yet read; "-" where the host
does not report them (listeners and UDP sockets).

--tcp and --udp keep one protocol; -l/--listening keeps listening sockets only
(TCP LISTEN, unconnected UDP).

-i/--info adds a line under each TCP connection with its state variables, as
"ss -ti" does: congestion control, mss, cwnd (bytes), ssthresh ("-" while
infinite, as it is until the first loss), srtt, rttvar, rto, retransmissions,
snd_una, snd_nxt, rcv_nxt, the windows (bytes, scaled), the window scales
(send,receive), sack and ts when negotiated, and byte counters. Sequence
numbers are relative, as Wireshark shows them: snd_una and snd_nxt count from
the initial send sequence number (ISS), rcv_nxt from the initial receive
sequence number (IRS), so the SYN is 0 and the first data byte 1. --absolute
shows the raw 32-bit values (and implies -i).

-o json and -o yaml print the connections as the API has them, every field
raw, as {"items": [...]}.`,
		Example: `  labctl connections h1
  labctl connections demo/h2 --tcp -i
  labctl connections r1 -l -o json`,
		Aliases:           []string{"conns"},
		Args:              exactArgs("HOST", 1),
		ValidArgsFunction: a.completeHostsForArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runConnections(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.tcp, "tcp", "t", false, "show TCP connections")
	f.BoolVarP(&o.udp, "udp", "u", false, "show UDP sockets")
	f.BoolVarP(&o.listening, "listening", "l", false, "show listening sockets only")
	f.BoolVarP(&o.info, "info", "i", false, "show each TCP connection's state variables on a second line")
	f.BoolVar(&o.absolute, "absolute", false, "with -i: show raw sequence numbers instead of relative ones")
	return cmd
}

func (a *app) runConnections(ctx context.Context, hostRef string, o connectionsOptions) error {
	host, err := a.resolve(ctx, collHosts, hostRef)
	if err != nil {
		return err
	}
	live, err := a.live()
	if err != nil {
		return err
	}
	resp, err := unary(a, ctx, func(ctx context.Context) (*labv1.ListConnectionsResponse, error) {
		return live.ListConnections(ctx, &labv1.ListConnectionsRequest{Host: host})
	})
	if err != nil {
		return err
	}
	conns := o.filter(resp.GetConnections())
	if a.output != outputTable {
		msgs := make([]proto.Message, len(conns))
		for i, c := range conns {
			msgs[i] = c
		}
		return a.printObjects(msgs, false)
	}
	if len(conns) == 0 {
		fmt.Fprintf(a.stderr, "No connections found on host %s.\n", shortID(host))
		return nil
	}
	return o.printTable(a, conns)
}

// filter keeps the connections --tcp, --udp and -l ask for. Neither --tcp
// nor --udp keeps both, as ss does.
func (o connectionsOptions) filter(conns []*labv1.Connection) []*labv1.Connection {
	var out []*labv1.Connection
	for _, c := range conns {
		proto := c.GetProtocol()
		if (o.tcp || o.udp) && !(o.tcp && proto == "tcp" || o.udp && proto == "udp") {
			continue
		}
		if o.listening && !listening(c) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// listening reports whether ss -l would show c: a TCP listener or an
// unconnected UDP socket.
func listening(c *labv1.Connection) bool {
	switch c.GetProtocol() {
	case "tcp":
		return c.GetState() == "LISTEN"
	case "udp":
		return c.GetState() == "UNCONN"
	}
	return false
}

// printTable prints the connections as aligned columns; with -i, each TCP
// connection's details follow it on an indented line. The table is aligned
// first, without those lines, so that they do not break the columns.
func (o connectionsOptions) printTable(a *app, conns []*labv1.Connection) error {
	rows := make([][]string, len(conns))
	for i, c := range conns {
		sendQ, recvQ := "-", "-"
		if t := c.GetTcp(); t != nil {
			sendQ, recvQ = strconv.FormatUint(uint64(t.GetSendQueue()), 10), strconv.FormatUint(uint64(t.GetRecvQueue()), 10)
		}
		rows[i] = []string{c.GetProtocol(), c.GetState(), orNone(c.GetLocalAddress()), orNone(c.GetRemoteAddress()), sendQ, recvQ}
	}
	var table bytes.Buffer
	if err := writeTable(&table, []string{"PROTO", "STATE", "LOCAL", "REMOTE", "SEND-Q", "RECV-Q"}, rows); err != nil {
		return err
	}
	if !o.info && !o.absolute {
		_, err := a.stdout.Write(table.Bytes())
		return err
	}
	lines := strings.SplitAfter(table.String(), "\n")
	var out strings.Builder
	out.WriteString(lines[0]) // the header
	for i, c := range conns {
		out.WriteString(lines[i+1])
		if t := c.GetTcp(); t != nil {
			out.WriteString("  " + tcpInfoLine(t, o.absolute) + "\n")
		}
	}
	_, err := fmt.Fprint(a.stdout, out.String())
	return err
}

// infiniteSsthresh is where the stack caps ssthresh while it is "infinite"
// (RFC 5681 §3.1: "arbitrarily high"), before the first loss.
const infiniteSsthresh = 1 << 30

// tcpInfoLine is ss -ti's detail line, in our words:
//
//	cubic mss:1448 cwnd:14480 ssthresh:- srtt:0.05ms rttvar:0.02ms rto:200ms retrans:0 snd_una:1 ...
//
// Sequence numbers are relative to ISS (snd_*) and IRS (rcv_nxt) unless
// absolute is set; 32-bit arithmetic makes that right across wrap-around.
func tcpInfoLine(t *labv1.TCPInfo, absolute bool) string {
	sndUna, sndNxt, rcvNxt := t.GetSndUna(), t.GetSndNxt(), t.GetRcvNxt()
	if !absolute {
		sndUna -= t.GetIss()
		sndNxt -= t.GetIss()
		rcvNxt -= t.GetIrs()
	}
	ssthresh := "-"
	if t.GetSsthresh() < infiniteSsthresh {
		ssthresh = strconv.FormatUint(uint64(t.GetSsthresh()), 10)
	}
	var parts []string
	if cc := t.GetCongestionControl(); cc != "" {
		parts = append(parts, cc)
	}
	parts = append(parts,
		fmt.Sprintf("mss:%d", t.GetMss()),
		fmt.Sprintf("cwnd:%d", t.GetCwnd()),
		"ssthresh:"+ssthresh,
		"srtt:"+msDuration(t.GetSrtt().AsDuration()),
		"rttvar:"+msDuration(t.GetRttvar().AsDuration()),
		"rto:"+msDuration(t.GetRto().AsDuration()),
		fmt.Sprintf("retrans:%d", t.GetRetransmits()),
		fmt.Sprintf("snd_una:%d", sndUna),
		fmt.Sprintf("snd_nxt:%d", sndNxt),
		fmt.Sprintf("rcv_nxt:%d", rcvNxt),
		fmt.Sprintf("snd_wnd:%d", t.GetSndWnd()),
		fmt.Sprintf("rcv_wnd:%d", t.GetRcvWnd()),
		fmt.Sprintf("wscale:%d,%d", t.GetSndWscale(), t.GetRcvWscale()),
	)
	if t.GetSack() {
		parts = append(parts, "sack")
	}
	if t.GetTimestamps() {
		parts = append(parts, "ts")
	}
	parts = append(parts,
		fmt.Sprintf("bytes_sent:%d", t.GetBytesSent()),
		fmt.Sprintf("bytes_acked:%d", t.GetBytesAcked()),
		fmt.Sprintf("bytes_received:%d", t.GetBytesReceived()),
	)
	return strings.Join(parts, " ")
}

// msDuration is a duration in milliseconds to the microsecond, without
// trailing zeros, as ss prints rtt: "0.05ms", "200ms", "1.234ms".
func msDuration(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', -1, 64) + "ms"
}
