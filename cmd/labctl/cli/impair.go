package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/labnet-dev/labnet/format/topology"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// impairFlags are the flags of labctl impair, in the order they are shown.
var impairFlags = []string{"loss", "delay", "jitter", "duplicate", "reorder", "corrupt", "rate"}

func (a *app) newImpairCommand() *cobra.Command {
	var values [7]string
	var clear bool
	cmd := &cobra.Command{
		Use:   "impair HOST:IFACE [--loss P%] [--delay D] [--jitter D] [--duplicate P%] [--reorder P%] [--corrupt P%] [--rate R] | --clear",
		Short: "Set or clear the impairments of an interface, like netem",
		Long: `Degrade what an interface sends, as Linux netem does on a link: drop,
delay, duplicate, reorder or corrupt packets, or limit the rate. HOST is ID or
LAB/ID; IFACE is the interface's name (eth0, eth1, ...).

The flags given replace the interface's whole impairment, as "tc qdisc
change" does: a flag left out is no longer applied. --clear removes every
impairment. The host is not restarted: its connections carry on, and packets
already held back are delivered when they are due.

Percentages need the % sign; durations their unit (20ms, 1.5s); rates are
bits per second: 10mbit, 64kbit, 1gbit, 9600bit (bps, kbps, mbps also mean
bits). See docs/topology.md for what each impairment does.`,
		Example: `  labctl impair h1:eth0 --loss 10%
  labctl impair h1:eth0 --delay 100ms --jitter 20ms --reorder 25%
  labctl impair demo/r1:eth1 --rate 1mbit
  labctl impair h1:eth0 --clear`,
		Args:              exactArgs("HOST:IFACE", 1),
		ValidArgsFunction: a.completeHostInterfaces,
		RunE: func(cmd *cobra.Command, args []string) error {
			given := map[string]string{}
			for i, name := range impairFlags {
				if cmd.Flags().Changed(name) {
					given[name] = values[i]
				}
			}
			return a.runImpair(cmd.Context(), args[0], given, clear)
		},
	}
	f := cmd.Flags()
	usage := map[string]string{
		"loss":      "percentage of packets dropped, e.g. 10%",
		"delay":     "delay added to every packet, e.g. 20ms",
		"jitter":    "random variation of the delay, +/-, e.g. 5ms",
		"duplicate": "percentage of packets sent twice, e.g. 2%",
		"reorder":   "percentage of packets sent at once, ahead of delayed ones (needs --delay), e.g. 25%",
		"corrupt":   "percentage of packets with one bit flipped, e.g. 1%",
		"rate":      "rate limit in bits per second, e.g. 10mbit",
	}
	for i, name := range impairFlags {
		f.StringVar(&values[i], name, "", usage[name])
	}
	f.BoolVar(&clear, "clear", false, "remove every impairment of the interface")
	f.SortFlags = false
	return cmd
}

// impairment builds an Impairment from the flags given (flag name ->
// value). Errors name the flag.
func impairment(given map[string]string) (*labv1.Impairment, error) {
	im := &labv1.Impairment{}
	for _, name := range impairFlags {
		v, ok := given[name]
		if !ok {
			continue
		}
		var err error
		switch name {
		case "loss":
			im.LossPercent, err = topology.ParsePercent(v)
		case "duplicate":
			im.DuplicatePercent, err = topology.ParsePercent(v)
		case "reorder":
			im.ReorderPercent, err = topology.ParsePercent(v)
		case "corrupt":
			im.CorruptPercent, err = topology.ParsePercent(v)
		case "delay", "jitter":
			var d time.Duration
			if d, err = topology.ParseDuration(v); err == nil && d != 0 {
				if name == "delay" {
					im.Delay = durationpb.New(d)
				} else {
					im.Jitter = durationpb.New(d)
				}
			}
		case "rate":
			im.RateBps, err = topology.ParseRate(v)
		}
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", name, err)
		}
	}
	return im, nil
}

// splitHostInterface splits "HOST:IFACE" at its last colon.
func splitHostInterface(arg string) (host, iface string, err error) {
	i := strings.LastIndexByte(arg, ':')
	if i <= 0 || i == len(arg)-1 {
		return "", "", fmt.Errorf("%q: want HOST:IFACE, e.g. h1:eth0", arg)
	}
	return arg[:i], arg[i+1:], nil
}

func (a *app) runImpair(ctx context.Context, arg string, given map[string]string, clear bool) error {
	hostRef, iface, err := splitHostInterface(arg)
	if err != nil {
		return err
	}
	switch {
	case clear && len(given) > 0:
		return errors.New("--clear cannot be combined with impairment flags")
	case !clear && len(given) == 0:
		return errors.New("nothing to set: give impairments (--loss, --delay, --jitter, --duplicate, --reorder, --corrupt, --rate) or --clear")
	}
	im, err := impairment(given)
	if err != nil {
		return err
	}
	host, err := a.resolve(ctx, collHosts, hostRef)
	if err != nil {
		return err
	}
	c, err := a.labs()
	if err != nil {
		return err
	}
	resp, err := unary(a, ctx, func(ctx context.Context) (*labv1.SetImpairmentResponse, error) {
		return c.SetImpairment(ctx, &labv1.SetImpairmentRequest{Host: host, Interface: iface, Impair: im})
	})
	if err != nil {
		return err
	}
	if a.output != outputTable {
		return a.printObjects([]proto.Message{resp.GetHost()}, true)
	}
	what := impairSummary(im)
	if what == "" {
		fmt.Fprintf(a.stdout, "cleared impairments of %s:%s\n", shortID(host), iface)
		return nil
	}
	fmt.Fprintf(a.stdout, "impaired %s:%s: %s\n", shortID(host), iface, what)
	return nil
}

// impairSummary is an impairment in one line, in netem's order and words:
// "loss 10%, delay 20ms±5ms, rate 10mbit"; "" for none.
func impairSummary(im *labv1.Impairment) string {
	var parts []string
	if v := im.GetLossPercent(); v != 0 {
		parts = append(parts, "loss "+topology.FormatPercent(v))
	}
	delay, jitter := im.GetDelay().AsDuration(), im.GetJitter().AsDuration()
	switch {
	case jitter != 0:
		parts = append(parts, fmt.Sprintf("delay %v±%v", delay, jitter))
	case delay != 0:
		parts = append(parts, fmt.Sprintf("delay %v", delay))
	}
	for _, p := range []struct {
		name  string
		value float64
	}{
		{"duplicate", im.GetDuplicatePercent()},
		{"reorder", im.GetReorderPercent()},
		{"corrupt", im.GetCorruptPercent()},
	} {
		if p.value != 0 {
			parts = append(parts, p.name+" "+topology.FormatPercent(p.value))
		}
	}
	if r := im.GetRateBps(); r != 0 {
		parts = append(parts, "rate "+topology.FormatRate(r))
	}
	return strings.Join(parts, ", ")
}

// completeHostInterfaces completes HOST:IFACE: host names (followed by a
// colon), then the interfaces of the host typed.
func (a *app) completeHostInterfaces(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx := cmd.Context()
	hostRef, _, typedColon := strings.Cut(toComplete, ":")
	if !typedColon {
		var out []cobra.Completion
		for _, c := range a.completeNames(ctx, collHosts, toComplete) {
			ref, desc, _ := strings.Cut(c, "\t")
			out = append(out, cobra.CompletionWithDesc(ref+":", desc))
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	h, err := a.getHost(ctx, hostRef)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for i, ifc := range h.GetInterfaces() {
		if c := hostRef + ":" + ifaceName(i, ifc); strings.HasPrefix(c, toComplete) {
			out = append(out, cobra.CompletionWithDesc(c, "on network "+ifc.GetNetwork()))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
