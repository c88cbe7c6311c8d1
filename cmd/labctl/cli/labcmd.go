package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// newLabCommand changes who owns and who sees a lab: the two fields of a
// lab that are about people, not the network (docs/security.md).
func (a *app) newLabCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Hand a lab to another user, or share it with everyone",
		Long: `Change who owns a lab and who sees it. A lab's owner (the user who created
it) and admins change it and run live calls in it; a shared lab is seen
(get, describe, watch) by every user.`,
	}
	var off bool
	share := &cobra.Command{
		Use:     "share LAB",
		Short:   "Let every user view LAB (--off: only its owner and admins again)",
		Example: "  labctl lab share class\n  labctl lab share class --off",
		Args:    exactArgs("LAB", 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, err := a.updateLab(cmd.Context(), args[0], &labv1.Lab{Shared: !off}, "shared")
			if err != nil {
				return err
			}
			state := "shared: every user may view it"
			if !lab.GetShared() {
				state = "not shared: only its owner and admins see it"
			}
			_, err = fmt.Fprintf(a.stdout, "lab %s %s\n", shortID(lab.GetName()), state)
			return err
		},
	}
	share.Flags().BoolVar(&off, "off", false, "stop sharing the lab")
	chown := &cobra.Command{
		Use:     "chown LAB USER",
		Short:   "Hand LAB to USER, who becomes its owner (admins only)",
		Example: "  labctl lab chown net1 alice",
		Args:    exactArgs("LAB USER", 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := strings.TrimPrefix(args[1], "users/")
			lab, err := a.updateLab(cmd.Context(), args[0], &labv1.Lab{Owner: user}, "owner")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "lab %s now owned by %s\n", shortID(lab.GetName()), lab.GetOwner())
			return err
		},
	}
	cmd.AddCommand(share, chown)
	return cmd
}

// updateLab sets the field named path of lab id (or "labs/id") to what
// change holds.
func (a *app) updateLab(ctx context.Context, id string, change *labv1.Lab, path string) (*labv1.Lab, error) {
	c, err := a.labs()
	if err != nil {
		return nil, err
	}
	id = strings.TrimPrefix(strings.TrimPrefix(id, "labs/"), "lab/")
	if id == "" {
		return nil, fmt.Errorf("a LAB name is needed")
	}
	change.Name = labName(id)
	resp, err := unary(a, ctx, func(ctx context.Context) (*labv1.UpdateLabResponse, error) {
		return c.UpdateLab(ctx, &labv1.UpdateLabRequest{Lab: change, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{path}}})
	})
	return resp.GetLab(), err
}
