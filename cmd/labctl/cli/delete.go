package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func (a *app) newDeleteCommand() *cobra.Command {
	var files []string
	var dryRun bool
	kinds := []kind{kindLab, kindNetwork, kindHost}
	cmd := &cobra.Command{
		Use:   "delete (-f FILE | TYPE NAME...)",
		Short: "Delete what a topology file names, or labs, networks and hosts by name",
		Long: `Delete the hosts and networks a topology file names (and its lab once it is
empty), or the named labs, networks or hosts.

TYPE is lab, network (net) or host, singular or plural. Deleting a lab deletes
everything in it. A network or host NAME is ID or LAB/ID; with --lab unset, a
bare ID is looked up across all labs.`,
		Example: `  labctl delete -f lab.yaml
  labctl delete host h1 h2 --lab demo
  labctl delete lab demo`,
		ValidArgsFunction: a.completeKindThenNames(kinds...),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(files) > 0 {
				if len(args) > 0 {
					return errors.New("delete takes either -f FILE or TYPE NAME..., not both")
				}
				return a.runDeleteTopology(cmd.Context(), files, dryRun)
			}
			if len(args) == 0 {
				return errors.New("delete needs -f FILE or TYPE NAME...")
			}
			k, err := parseKind(args[0], kinds...)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				return fmt.Errorf("delete %s needs at least one NAME", args[0])
			}
			if dryRun {
				return errors.New("--dry-run works only with -f")
			}
			return a.runDeleteNames(cmd.Context(), k, args[1:])
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "topology file, directory, or - for standard input (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and show the changes without making them (with -f)")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

func (a *app) runDeleteTopology(ctx context.Context, files []string, dryRun bool) error {
	return a.runTopologies(ctx, files, dryRun, func(ctx context.Context, c labv1.LabServiceClient, t *labv1.Topology) ([]*labv1.Change, error) {
		resp, err := c.DeleteTopology(ctx, &labv1.DeleteTopologyRequest{Topology: t, ValidateOnly: dryRun})
		return resp.GetChanges(), err
	})
}

// runDeleteNames deletes resources one by one. A name that fails is reported
// and the others are still deleted, as kubectl does; a failure to talk to
// labd at all stops at once.
func (a *app) runDeleteNames(ctx context.Context, k kind, refs []string) error {
	c, err := a.labs()
	if err != nil {
		return err
	}
	failed := false
	for _, ref := range refs {
		name, err := a.deleteOne(ctx, c, k, ref)
		if err == nil {
			fmt.Fprintf(a.stdout, "%s deleted\n", kindID(name))
			continue
		}
		if fatal(err) {
			return err
		}
		fmt.Fprintf(a.stderr, "error: %s\n", a.errorMessage(err))
		failed = true
	}
	if failed {
		return &exitError{code: 1}
	}
	return nil
}

func (a *app) deleteOne(ctx context.Context, c labv1.LabServiceClient, k kind, ref string) (string, error) {
	var name string
	var err error
	switch k {
	case kindLab:
		name, err = labRef(ref)
	case kindNetwork:
		name, err = a.resolve(ctx, collNetworks, ref)
	case kindHost:
		name, err = a.resolve(ctx, collHosts, ref)
	}
	if err != nil {
		return "", err
	}
	_, err = unary(a, ctx, func(ctx context.Context) (any, error) {
		switch k {
		case kindLab:
			return c.DeleteLab(ctx, &labv1.DeleteLabRequest{Name: name})
		case kindNetwork:
			return c.DeleteNetwork(ctx, &labv1.DeleteNetworkRequest{Name: name})
		default:
			return c.DeleteHost(ctx, &labv1.DeleteHostRequest{Name: name})
		}
	})
	return name, err
}

// fatal reports whether err is about reaching labd rather than about one
// resource.
func fatal(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented:
		return true
	}
	return false
}
