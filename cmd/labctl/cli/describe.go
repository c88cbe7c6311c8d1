package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/reflect/protoreflect"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func (a *app) newDescribeCommand() *cobra.Command {
	kinds := []kind{kindLab, kindNetwork, kindHost}
	return &cobra.Command{
		Use:   "describe TYPE NAME...",
		Short: "Show a lab, network or host in detail",
		Long: `Show a lab, network or host in detail. For a host, this includes what its
stack reports live: interfaces with their counters and impairments (with what
they did), the routing table and the IP counters.

TYPE is lab, network (net) or host. A network or host NAME is ID or LAB/ID;
with --lab unset, a bare ID is looked up across all labs.`,
		Example: `  labctl describe host h1
  labctl describe network demo/lan1
  labctl describe lab demo`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("describe needs TYPE NAME... (TYPE: lab, network or host)")
			}
			return nil
		},
		ValidArgsFunction: a.completeKindThenNames(kinds...),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := parseKind(args[0], kinds...)
			if err != nil {
				return err
			}
			names := args[1:]
			if len(names) == 0 {
				if k != kindLab || a.lab == "" {
					return fmt.Errorf("describe %s needs a NAME", args[0])
				}
				names = []string{a.lab}
			}
			ctx := cmd.Context()
			for i, n := range names {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				var err error
				switch k {
				case kindLab:
					err = a.describeLab(ctx, n)
				case kindNetwork:
					err = a.describeNetwork(ctx, n)
				case kindHost:
					err = a.describeHost(ctx, n)
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// section is a block of describe output whose tab-separated cells are
// aligned together, and only together: each section gets its own column
// widths.
type section []string

// writeSections prints sections one after another, aligning each alone.
func writeSections(w io.Writer, sections ...section) error {
	for _, s := range sections {
		tw := tabwriterFor(w)
		for _, l := range s {
			fmt.Fprintln(tw, l)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// tabwriterFor is kubectl describe's layout: two spaces between columns.
func tabwriterFor(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// tableSection is a titled table indented under its title, or "Title:
// <none>" when it has no rows.
func tableSection(title string, header []string, rows [][]string) section {
	if len(rows) == 0 {
		return section{title + ":\t" + none}
	}
	s := section{title + ":", "  " + strings.Join(header, "\t")}
	for _, r := range rows {
		s = append(s, "  "+strings.Join(r, "\t"))
	}
	return s
}

func (a *app) describeHost(ctx context.Context, ref string) error {
	h, err := a.getHost(ctx, ref)
	if err != nil {
		return err
	}
	live, err := a.live()
	if err != nil {
		return err
	}
	resp, statusErr := unary(a, ctx, func(ctx context.Context) (*labv1.GetHostStatusResponse, error) {
		return live.GetHostStatus(ctx, &labv1.GetHostStatusRequest{Name: h.GetName()})
	})
	if statusErr != nil && ctx.Err() != nil {
		return statusErr
	}
	st := resp.GetStatus()

	node := h.GetNode()
	if node == "" {
		node = st.GetNode()
	}
	head := section{
		"Name:\t" + shortID(h.GetName()),
		"Lab:\t" + labOf(h.GetName()),
		"Node:\t" + orNone(node) + placementNote(h),
		"Role:\t" + role(h),
	}
	if statusErr != nil {
		head = append(head, "Status:\tunavailable ("+a.errorMessage(statusErr)+")")
		return writeSections(a.stdout, head, specInterfaces(h), specRoutes(h))
	}
	head = append(head, "Running:\t"+strconv.FormatBool(st.GetRunning()))
	return writeSections(a.stdout, head, statusInterfaces(h, st), statusRoutes(st), ipCounters(st.GetIp()))
}

// specInterfaces lists the interfaces as the spec has them, for a host whose
// live status is unavailable.
func specInterfaces(h *labv1.Host) section {
	if len(h.GetInterfaces()) == 0 {
		return section{"Interfaces:\t" + none}
	}
	s := section{"Interfaces:"}
	for i, ifc := range h.GetInterfaces() {
		var addrs []string
		for _, a := range []string{ifc.GetIpv4(), ifc.GetIpv6()} {
			if a != "" {
				addrs = append(addrs, a)
			}
		}
		s = append(s,
			"  "+ifaceName(i, ifc)+":",
			"    Network:\t"+orNone(ifc.GetNetwork()),
			"    Addresses:\t"+orNone(strings.Join(addrs, ", ")),
		)
		if im := impairSummary(ifc.GetImpair()); im != "" {
			s = append(s, "    Impair:\t"+im)
		}
	}
	return s
}

// specRoutes lists the static routes of the spec.
func specRoutes(h *labv1.Host) section {
	rows := make([][]string, len(h.GetRoutes()))
	for i, r := range h.GetRoutes() {
		rows[i] = []string{orNone(r.GetTo()), orNone(r.GetVia()), "static"}
	}
	return tableSection("Routes", []string{"DESTINATION", "VIA", "KIND"}, rows)
}

// statusInterfaces lists the interfaces as the host reports them, with the
// impairments of the spec (h) and what they did.
func statusInterfaces(h *labv1.Host, st *labv1.HostStatus) section {
	if len(st.GetInterfaces()) == 0 {
		return section{"Interfaces:\t" + none}
	}
	impairs := map[string]*labv1.Impairment{}
	for i, ifc := range h.GetInterfaces() {
		impairs[ifaceName(i, ifc)] = ifc.GetImpair()
	}
	s := section{"Interfaces:"}
	for _, ifc := range st.GetInterfaces() {
		c := ifc.GetCounters()
		s = append(s,
			"  "+ifc.GetName()+":",
			"    Network:\t"+orNone(ifc.GetNetwork()),
			"    Addresses:\t"+orNone(strings.Join(ifc.GetAddresses(), ", ")),
			"    MTU:\t"+strconv.Itoa(int(mtu(ifc.GetMtu()))),
			fmt.Sprintf("    RX:\t%d packets, %d bytes, %d dropped", c.GetRxPackets(), c.GetRxBytes(), c.GetRxDropped()),
			fmt.Sprintf("    TX:\t%d packets, %d bytes, %d dropped", c.GetTxPackets(), c.GetTxBytes(), c.GetTxDropped()),
		)
		if im := impairSummary(impairs[ifc.GetName()]); im != "" {
			s = append(s, "    Impair:\t"+im)
		}
		if line := impairCounters(c); line != "" {
			s = append(s, "    Impaired:\t"+line)
		}
	}
	return s
}

// impairCounters is what an interface's impairments did, in one line, or
// "" when they did nothing (or there are none).
func impairCounters(c *labv1.InterfaceCounters) string {
	var parts []string
	for _, n := range []struct {
		value uint64
		what  string
	}{
		{c.GetImpairDropped(), "dropped"},
		{c.GetImpairDuplicated(), "duplicated"},
		{c.GetImpairCorrupted(), "corrupted"},
		{c.GetImpairDelayed(), "delayed"},
		{c.GetImpairReordered(), "reordered"},
		{c.GetQueueDropped(), "dropped (queue full)"},
	} {
		if n.value != 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n.value, n.what))
		}
	}
	return strings.Join(parts, ", ")
}

func statusRoutes(st *labv1.HostStatus) section {
	rows := make([][]string, len(st.GetRoutes()))
	for i, r := range st.GetRoutes() {
		rows[i] = []string{orNone(r.GetDestination()), orNone(r.GetVia()), orNone(r.GetInterface()), orNone(r.GetKind())}
	}
	return tableSection("Routes", []string{"DESTINATION", "VIA", "INTERFACE", "KIND"}, rows)
}

// ipCounterLabels names the IPStats fields; a field added later and not
// named here is shown by its proto name.
var ipCounterLabels = map[protoreflect.Name]string{
	"delivered":         "Delivered",
	"forwarded":         "Forwarded",
	"malformed":         "Malformed",
	"ttl_exceeded":      "TTL exceeded",
	"no_route":          "No route",
	"host_unreachable":  "Host unreachable",
	"not_for_us":        "Not for us",
	"too_big":           "Too big",
	"icmp_sent":         "ICMP sent",
	"icmp_rate_limited": "ICMP rate limited",
	"fragments_dropped": "Fragments dropped",
	"unknown_protocol":  "Unknown protocol",
}

// ipCounters lists every non-zero IPStats field, in field order.
func ipCounters(ip *labv1.IPStats) section {
	var s section
	if ip != nil {
		m := ip.ProtoReflect()
		fields := m.Descriptor().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			if fd.Kind() != protoreflect.Uint64Kind || !m.Has(fd) {
				continue
			}
			label, ok := ipCounterLabels[fd.Name()]
			if !ok {
				label = strings.ReplaceAll(string(fd.Name()), "_", " ")
			}
			s = append(s, fmt.Sprintf("  %s:\t%d", label, m.Get(fd).Uint()))
		}
	}
	if len(s) == 0 {
		return section{"IP counters:\t" + none}
	}
	return append(section{"IP counters:"}, s...)
}

func (a *app) describeNetwork(ctx context.Context, ref string) error {
	nets, err := a.getNetworks(ctx, []string{ref})
	if err != nil {
		return err
	}
	n := nets[0]
	lab := labOf(n.GetName())
	hosts, err := a.listHosts(ctx, labName(lab))
	if err != nil {
		return err
	}
	id := shortID(n.GetName())
	var rows [][]string
	for _, h := range hosts {
		for i, ifc := range h.GetInterfaces() {
			if ifc.GetNetwork() == id || ifc.GetNetwork() == n.GetName() {
				rows = append(rows, []string{shortID(h.GetName()), ifaceName(i, ifc), orNone(ifc.GetIpv4()), orNone(ifc.GetIpv6())})
			}
		}
	}
	head := section{
		"Name:\t" + id,
		"Lab:\t" + lab,
		"IPv4:\t" + orNone(n.GetIpv4()),
		"IPv6:\t" + orNone(n.GetIpv6()),
		"MTU:\t" + strconv.Itoa(int(mtu(n.GetMtu()))),
	}
	if n.GetVni() != 0 {
		head = append(head, "VNI:\t"+strconv.Itoa(int(n.GetVni())))
	}
	return writeSections(a.stdout, head,
		tableSection("Interfaces", []string{"HOST", "INTERFACE", "IPV4", "IPV6"}, rows))
}

func (a *app) describeLab(ctx context.Context, ref string) error {
	labs, err := a.getLabs(ctx, []string{ref})
	if err != nil {
		return err
	}
	l := labs[0]
	nets, err := a.listNetworks(ctx, l.GetName())
	if err != nil {
		return err
	}
	hosts, err := a.listHosts(ctx, l.GetName())
	if err != nil {
		return err
	}
	created := none
	if t := l.GetCreateTime(); t != nil && t.IsValid() {
		created = fmt.Sprintf("%s (%s ago)", t.AsTime().UTC().Format(time.RFC3339), age(a.now(), t))
	}
	head := section{
		"Name:\t" + shortID(l.GetName()),
		"Description:\t" + orNone(l.GetDescription()),
		"Owner:\t" + orNone(l.GetOwner()),
		"Shared:\t" + yesNo(l.GetShared()),
		"Created:\t" + created,
	}
	netRows := make([][]string, len(nets))
	for i, n := range nets {
		netRows[i] = []string{shortID(n.GetName()), orNone(n.GetIpv4()), orNone(n.GetIpv6()), strconv.Itoa(int(mtu(n.GetMtu())))}
	}
	hostRows := make([][]string, len(hosts))
	for i, h := range hosts {
		hostRows[i] = []string{shortID(h.GetName()), role(h), orNone(h.GetNode()), orNone(interfacesSummary(h.GetInterfaces()))}
	}
	return writeSections(a.stdout, head,
		tableSection("Networks", []string{"NAME", "IPV4", "IPV6", "MTU"}, netRows),
		tableSection("Hosts", []string{"NAME", "ROLE", "NODE", "INTERFACES"}, hostRows))
}

// placementNote says why the host is on its node when that is worth
// knowing: " (pinned by the topology)", or " (failed over; home c)".
func placementNote(h *labv1.Host) string {
	switch {
	case h.GetPinned():
		return " (pinned by the topology)"
	case h.GetHomeNode() != "" && h.GetHomeNode() != h.GetNode():
		return " (failed over; home " + h.GetHomeNode() + ")"
	}
	return ""
}
