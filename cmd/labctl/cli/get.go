package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// kind is a resource type as typed on the command line.
type kind string

const (
	kindLab     kind = "lab"
	kindNetwork kind = "network"
	kindHost    kind = "host"
	kindNode    kind = "node"
)

var kindAliases = map[string]kind{
	"lab": kindLab, "labs": kindLab,
	"network": kindNetwork, "networks": kindNetwork, "net": kindNetwork, "nets": kindNetwork,
	"host": kindHost, "hosts": kindHost,
	"node": kindNode, "nodes": kindNode,
}

// plural is the plural of a kind, as listed in messages and completions.
func (k kind) plural() string { return string(k) + "s" }

// parseKind reads a resource type, accepting only the allowed kinds.
func parseKind(s string, allowed ...kind) (kind, error) {
	k, ok := kindAliases[strings.ToLower(s)]
	if ok {
		for _, a := range allowed {
			if a == k {
				return k, nil
			}
		}
	}
	want := make([]string, len(allowed))
	for i, a := range allowed {
		want[i] = a.plural()
	}
	list := strings.Join(want, ", ")
	if n := len(want); n > 1 {
		list = strings.Join(want[:n-1], ", ") + " or " + want[n-1]
	}
	return "", fmt.Errorf("unknown resource type %q (want %s)", s, list)
}

func (a *app) newGetCommand() *cobra.Command {
	kinds := []kind{kindLab, kindNetwork, kindHost, kindNode}
	var watch bool
	cmd := &cobra.Command{
		Use:   "get TYPE [NAME...]",
		Short: "List labs, networks, hosts or nodes",
		Long: `List labs, networks, hosts or nodes, or show the named ones.

TYPE is labs, networks (net), hosts or nodes, singular or plural. A network or
host NAME is ID or LAB/ID; with --lab unset, a bare ID is looked up across all
labs. With --lab set, only that lab is listed and the LAB column is left out.

With --watch (-w), labs, networks, hosts or nodes are listed and then watched
until Ctrl-C: after the table, each change prints one more row: what happened
(ADDED, MODIFIED or DELETED; a deleted resource shows its last state), then
the table's columns:

  MODIFIED   demo   h1   host   n1   eth0=10.0.1.10/24
  DELETED    demo   h2   host   n2   eth0=10.0.2.10/24

A lab is MODIFIED when its networks or hosts are added or removed; a node when
its state, role, leadership or host count changes, and it is DELETED once
labd forgets it (--forget-after). With -o json, every event of the stream (the
initial ADDED ones and the SYNCED that ends them included) is printed as one
lab.v1.WatchResponse (lab.v1.WatchNodesResponse for nodes) JSON object per
line; with -o yaml, as one YAML document per event.`,
		Example: `  labctl get hosts
  labctl get networks --lab demo -o yaml
  labctl get host demo/h1 -o json
  labctl get hosts --lab demo -w
  labctl get nodes -w`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("get needs a resource type: labs, networks, hosts or nodes")
			}
			return nil
		},
		ValidArgsFunction: a.completeKindThenNames(kinds...),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := parseKind(args[0], kinds...)
			if err != nil {
				return err
			}
			if watch {
				return a.runWatch(cmd.Context(), k, args[1:])
			}
			return a.runGet(cmd.Context(), k, args[1:])
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after listing, print each change until interrupted")
	return cmd
}

func (a *app) runGet(ctx context.Context, k kind, names []string) error {
	single := len(names) == 1
	switch k {
	case kindLab:
		if len(names) == 0 && a.lab != "" {
			names = []string{a.lab}
		}
		labs, err := a.getLabs(ctx, names)
		if err != nil {
			return err
		}
		return a.printLabs(labs, single)
	case kindNetwork:
		nets, err := a.getNetworks(ctx, names)
		if err != nil {
			return err
		}
		return a.printNetworks(nets, single)
	case kindHost:
		hosts, err := a.getHosts(ctx, names)
		if err != nil {
			return err
		}
		return a.printHosts(hosts, single)
	case kindNode:
		nodes, err := a.getNodes(ctx, names)
		if err != nil {
			return err
		}
		return a.printNodes(nodes, single)
	}
	return fmt.Errorf("cannot get %s", k.plural())
}

// getLabs gets the named labs, or lists them all.
func (a *app) getLabs(ctx context.Context, names []string) ([]*labv1.Lab, error) {
	if len(names) == 0 {
		return a.listLabs(ctx)
	}
	c, err := a.labs()
	if err != nil {
		return nil, err
	}
	var labs []*labv1.Lab
	for _, n := range names {
		name, err := labRef(n)
		if err != nil {
			return nil, err
		}
		resp, err := unary(a, ctx, func(ctx context.Context) (*labv1.GetLabResponse, error) {
			return c.GetLab(ctx, &labv1.GetLabRequest{Name: name})
		})
		if err != nil {
			return nil, err
		}
		labs = append(labs, resp.GetLab())
	}
	return labs, nil
}

// parent is the parent to list networks or hosts of: --lab, or every lab.
func (a *app) parent() string {
	if a.lab != "" {
		return labName(a.lab)
	}
	return allLabs
}

func (a *app) getNetworks(ctx context.Context, names []string) ([]*labv1.Network, error) {
	if len(names) == 0 {
		return a.listNetworks(ctx, a.parent())
	}
	c, err := a.labs()
	if err != nil {
		return nil, err
	}
	var nets []*labv1.Network
	for _, n := range names {
		name, err := a.resolve(ctx, collNetworks, n)
		if err != nil {
			return nil, err
		}
		resp, err := unary(a, ctx, func(ctx context.Context) (*labv1.GetNetworkResponse, error) {
			return c.GetNetwork(ctx, &labv1.GetNetworkRequest{Name: name})
		})
		if err != nil {
			return nil, err
		}
		nets = append(nets, resp.GetNetwork())
	}
	return nets, nil
}

func (a *app) getHosts(ctx context.Context, names []string) ([]*labv1.Host, error) {
	if len(names) == 0 {
		return a.listHosts(ctx, a.parent())
	}
	var hosts []*labv1.Host
	for _, n := range names {
		h, err := a.getHost(ctx, n)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// getHost resolves a host reference and gets the host.
func (a *app) getHost(ctx context.Context, ref string) (*labv1.Host, error) {
	name, err := a.resolve(ctx, collHosts, ref)
	if err != nil {
		return nil, err
	}
	c, err := a.labs()
	if err != nil {
		return nil, err
	}
	resp, err := unary(a, ctx, func(ctx context.Context) (*labv1.GetHostResponse, error) {
		return c.GetHost(ctx, &labv1.GetHostRequest{Name: name})
	})
	if err != nil {
		return nil, err
	}
	return resp.GetHost(), nil
}

func (a *app) getNodes(ctx context.Context, names []string) ([]*labv1.Node, error) {
	if len(names) == 0 {
		return a.listNodes(ctx)
	}
	c, err := a.nodes()
	if err != nil {
		return nil, err
	}
	var nodes []*labv1.Node
	for _, n := range names {
		name, err := nodeRef(n)
		if err != nil {
			return nil, err
		}
		resp, err := unary(a, ctx, func(ctx context.Context) (*labv1.GetNodeResponse, error) {
			return c.GetNode(ctx, &labv1.GetNodeRequest{Name: name})
		})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, resp.GetNode())
	}
	return nodes, nil
}

// printList prints resources as -o asks; table rows come from header and
// row. An empty table prints "No <kind>s found" on stderr, as kubectl does.
func printList[T proto.Message](a *app, k kind, items []T, single bool, header []string, row func(T) []string) error {
	if a.output != outputTable {
		msgs := make([]proto.Message, len(items))
		for i, m := range items {
			msgs[i] = m
		}
		return a.printObjects(msgs, single)
	}
	if len(items) == 0 {
		where := ""
		if a.lab != "" && (k == kindNetwork || k == kindHost) {
			where = " in lab " + a.lab
		}
		fmt.Fprintf(a.stderr, "No %s found%s.\n", k.plural(), where)
		return nil
	}
	rows := make([][]string, len(items))
	for i, m := range items {
		rows[i] = row(m)
	}
	return writeTable(a.stdout, header, rows)
}

// labHeader prepends the LAB column header unless --lab is set.
func (a *app) labHeader(cols ...string) []string {
	if a.lab != "" {
		return cols
	}
	return append([]string{"LAB"}, cols...)
}

// withLab prepends the LAB column unless --lab is set.
func (a *app) withLab(name string, cols ...string) []string {
	if a.lab != "" {
		return cols
	}
	return append([]string{labOf(name)}, cols...)
}

func (a *app) printLabs(labs []*labv1.Lab, single bool) error {
	now := a.now()
	return printList(a, kindLab, labs, single, labHeader, func(l *labv1.Lab) []string { return labRow(now, l) })
}

var labHeader = []string{"NAME", "OWNER", "SHARED", "NETWORKS", "HOSTS", "AGE"}

func labRow(now time.Time, l *labv1.Lab) []string {
	return []string{
		shortID(l.GetName()),
		orNone(l.GetOwner()),
		yesNo(l.GetShared()),
		strconv.Itoa(int(l.GetNetworkCount())),
		strconv.Itoa(int(l.GetHostCount())),
		age(now, l.GetCreateTime()),
	}
}

func (a *app) printNetworks(nets []*labv1.Network, single bool) error {
	return printList(a, kindNetwork, nets, single, a.networkHeader(), a.networkRow)
}

func (a *app) networkHeader() []string { return a.labHeader("NAME", "IPV4", "IPV6", "MTU") }

func (a *app) networkRow(n *labv1.Network) []string {
	return a.withLab(n.GetName(),
		shortID(n.GetName()),
		orNone(n.GetIpv4()),
		orNone(n.GetIpv6()),
		strconv.Itoa(int(mtu(n.GetMtu()))),
	)
}

// mtu is a network's MTU: 1400 when unset.
func mtu(m uint32) uint32 {
	if m == 0 {
		return 1400
	}
	return m
}

func (a *app) printHosts(hosts []*labv1.Host, single bool) error {
	return printList(a, kindHost, hosts, single, a.hostHeader(), a.hostRow)
}

func (a *app) hostHeader() []string { return a.labHeader("NAME", "ROLE", "NODE", "INTERFACES") }

func (a *app) hostRow(h *labv1.Host) []string {
	return a.withLab(h.GetName(),
		shortID(h.GetName()),
		role(h),
		orNone(h.GetNode()),
		orNone(interfacesSummary(h.GetInterfaces())),
	)
}

// role is "router" for a host that forwards, "host" otherwise.
func role(h *labv1.Host) string {
	if h.GetForwarding() {
		return "router"
	}
	return "host"
}

// ifaceName is an interface's name: eth{index} when unset.
func ifaceName(i int, ifc *labv1.Interface) string {
	if ifc.GetName() != "" {
		return ifc.GetName()
	}
	return "eth" + strconv.Itoa(i)
}

// interfacesSummary is the INTERFACES column:
// "eth0=10.0.1.10/24,fd00:0:0:1::a/64 eth1=10.0.2.1/24".
func interfacesSummary(ifcs []*labv1.Interface) string {
	parts := make([]string, len(ifcs))
	for i, ifc := range ifcs {
		var addrs []string
		for _, s := range []string{ifc.GetIpv4(), ifc.GetIpv6()} {
			if s != "" {
				addrs = append(addrs, s)
			}
		}
		if len(addrs) == 0 {
			addrs = []string{"(" + ifc.GetNetwork() + ")"}
		}
		parts[i] = ifaceName(i, ifc) + "=" + strings.Join(addrs, ",")
	}
	return strings.Join(parts, " ")
}

func (a *app) printNodes(nodes []*labv1.Node, single bool) error {
	now := a.now()
	return printList(a, kindNode, nodes, single, nodeHeader, func(n *labv1.Node) []string { return nodeRow(now, n) })
}

var nodeHeader = []string{"NAME", "STATE", "ROLE", "LEADER", "KIND", "OWNER", "CERT-EXPIRES", "API", "GOSSIP", "OVERLAY", "HOSTS", "AGE"}

func nodeRow(now time.Time, n *labv1.Node) []string {
	leader := "no"
	if n.GetLeader() {
		leader = "yes"
	}
	state := nodeState(n.GetState())
	if n.GetRemoved() {
		state = "removed"
	}
	expires := ""
	if t := n.GetCertificateExpireTime(); t != nil {
		expires = t.AsTime().UTC().Format(time.DateOnly)
	}
	return []string{
		shortID(n.GetName()),
		state,
		nodeRole(n.GetRole()),
		leader,
		orNone(n.GetKind()),
		orNone(n.GetOwner()),
		orNone(expires),
		orNone(n.GetApiAddress()),
		orNone(n.GetGossipAddress()),
		orNone(n.GetOverlayAddress()),
		strconv.Itoa(int(n.GetHostCount())),
		age(now, n.GetStartTime()),
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// nodeRole is NODE_ROLE_CONTROL as "control".
func nodeRole(r labv1.NodeRole) string {
	if r == labv1.NodeRole_NODE_ROLE_UNSPECIFIED {
		return "unknown"
	}
	return strings.ToLower(strings.TrimPrefix(r.String(), "NODE_ROLE_"))
}

// nodeState is NODE_STATE_ALIVE as "alive".
func nodeState(s labv1.NodeState) string {
	name := strings.TrimPrefix(s.String(), "NODE_STATE_")
	if s == labv1.NodeState_NODE_STATE_UNSPECIFIED {
		return "unknown"
	}
	return strings.ToLower(name)
}
