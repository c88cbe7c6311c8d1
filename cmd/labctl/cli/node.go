package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func (a *app) newNodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Invite, remove, promote and demote nodes",
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
		a.newNodeRoleCommand("remove", "Remove a node for good (admins)",
			"Remove NODE for good: every node refuses its certificate from then on and\nits hosts fail over. It may come back only with a new invite (labctl node invite).",
			func(ctx context.Context, c labv1.NodeServiceClient, name string) (*labv1.Node, error) {
				resp, err := c.RemoveNode(ctx, &labv1.RemoveNodeRequest{Name: name})
				return resp.GetNode(), err
			}, "removed: its certificate is refused everywhere"),
		a.newNodeInviteCommand(),
	)
	return cmd
}

// newNodeInviteCommand is `labctl node invite NAME`: it prints the labd
// command that enrols the new node with a single-use token.
func (a *app) newNodeInviteCommand() *cobra.Command {
	var (
		owner     string
		control   bool
		ttl       time.Duration
		tokenFile string
	)
	cmd := &cobra.Command{
		Use:   "invite NAME",
		Short: "Invite a new node to enrol (admins): prints the labd command to run on it",
		Long: `Make a single-use, short-lived enrolment token for a new node called NAME and
print the command to run on it: labd --name NAME --join GOSSIP --enroll TOKEN.
The token carries the API address to enrol at and the cluster CA's hash, so
no secret is copied by hand. --owner names the user whose machine it is.

With --token-file FILE the token is written to FILE alone (mode 0600) and the
command printed reads it from there (labd --enroll-file FILE), so that the
token shows in no output: a compose file's or an init container's invite.`,
		Example: "  labctl node invite alice-laptop --owner alice",
		Args:    exactArgs("NAME", 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.nodes()
			if err != nil {
				return err
			}
			req := &labv1.CreateNodeInviteRequest{NodeId: strings.TrimPrefix(args[0], "nodes/"), Owner: owner, Control: control}
			if cmd.Flags().Changed("ttl") {
				req.Ttl = durationpb.New(ttl)
			}
			resp, err := unary(a, cmd.Context(), func(ctx context.Context) (*labv1.CreateNodeInviteResponse, error) {
				return c.CreateNodeInvite(ctx, req)
			})
			if err != nil {
				return err
			}
			line := resp.GetCommand()
			if tokenFile != "" {
				if err := writeSecretFile(tokenFile, resp.GetToken()+"\n"); err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				line = strings.Replace(line, "--enroll "+resp.GetToken(), "--enroll-file "+tokenFile, 1)
			}
			_, err = fmt.Fprintf(a.stdout, "%s\n", line)
			return err
		},
	}
	cmd.Flags().StringVar(&owner, "owner", "", "the user who owns the node (a student's laptop)")
	cmd.Flags().BoolVar(&control, "control", false, "the node will be a control node")
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the invite is valid (at most 168h)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "write the token to this file (mode 0600) instead of printing it, for labd --enroll-file")
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
