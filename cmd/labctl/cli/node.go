package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func (a *app) newNodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Change which nodes are control nodes",
		Long: `Change which labd nodes are control nodes: the nodes that keep the lab's
desired state in their Raft log (1, 3 or 5 of them; the teacher's machine,
an assistant's). Every other node is a member: it follows the control plane
and runs hosts. The change goes through Raft, so it needs the control plane's
leader to be reachable; it is never made by editing files.

NODE is the node's name as "labctl get nodes" lists it.`,
	}
	cmd.AddCommand(
		a.newNodeRoleCommand("promote", "Make a member a control node (a Raft voter)",
			"Add NODE to the control plane's Raft group as a voter. It copies the\ndesired state from the leader and from then on votes on every write.",
			func(ctx context.Context, c labv1.NodeServiceClient, name string) (*labv1.Node, error) {
				resp, err := c.PromoteNode(ctx, &labv1.PromoteNodeRequest{Name: name})
				return resp.GetNode(), err
			}, "promoted: now a control node"),
		a.newNodeRoleCommand("demote", "Make a control node a member",
			"Remove NODE from the control plane's Raft group. It goes on as a member:\nit follows the control plane and runs its hosts.",
			func(ctx context.Context, c labv1.NodeServiceClient, name string) (*labv1.Node, error) {
				resp, err := c.DemoteNode(ctx, &labv1.DemoteNodeRequest{Name: name})
				return resp.GetNode(), err
			}, "demoted: now a member"),
	)
	return cmd
}

func (a *app) newNodeRoleCommand(verb, short, long string, call func(context.Context, labv1.NodeServiceClient, string) (*labv1.Node, error), done string) *cobra.Command {
	return &cobra.Command{
		Use:     verb + " NODE",
		Short:   short,
		Long:    long,
		Example: "  labctl node " + verb + " assistant",
		Args:    exactArgs("NODE", 1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return a.completeKindThenNames(kindNode)(cmd, []string{"nodes"}, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.nodes()
			if err != nil {
				return err
			}
			name := args[0]
			if name == "" {
				return fmt.Errorf("node %s needs a NODE name", verb)
			}
			if !strings.HasPrefix(name, "nodes/") {
				name = "nodes/" + name
			}
			if _, err := unary(a, cmd.Context(), func(ctx context.Context) (*labv1.Node, error) { return call(ctx, c, name) }); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "node %s %s\n", shortID(name), done)
			return err
		},
	}
}
