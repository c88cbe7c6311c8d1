package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func (a *app) newApplyCommand() *cobra.Command {
	var files []string
	var dryRun, wait bool
	var waitTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update a lab from topology files",
		Long: `Create or update the lab, networks and hosts a topology file describes.

Each file is applied atomically; applying the same file twice changes nothing,
and nothing the file does not name is removed. -f - reads standard input; -f
DIR applies the .yaml, .yml and .json files of a directory. All files are
read and checked before the first one is applied.

With --wait, apply then waits until every host it created or changed is
running, printing the progress on standard error; it fails naming the hosts
still not running after --wait-timeout.`,
		Example: `  labctl apply -f examples/two-lans.yaml
  cat lab.yaml | labctl apply -f -
  labctl apply -f lab.yaml --dry-run
  labctl apply -f lab.yaml --wait --wait-timeout 5m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runApply(cmd.Context(), files, dryRun, wait, waitTimeout)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "topology file, directory, or - for standard input (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and show the changes without making them")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the hosts created or changed are running")
	cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 2*time.Minute, "with --wait, fail when the hosts are not all running after this long")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

func (a *app) runApply(ctx context.Context, files []string, dryRun, wait bool, waitTimeout time.Duration) error {
	var applied []*labv1.Change
	err := a.runTopologies(ctx, files, dryRun, func(ctx context.Context, c labv1.LabServiceClient, t *labv1.Topology) ([]*labv1.Change, error) {
		resp, err := c.Apply(ctx, &labv1.ApplyRequest{Topology: t, ValidateOnly: dryRun})
		applied = append(applied, resp.GetChanges()...)
		return resp.GetChanges(), err
	})
	if err != nil || !wait || dryRun {
		return err
	}
	return a.waitRunning(ctx, changedHosts(applied), waitTimeout)
}

// runTopologies sends each topology of files with call and prints the
// changes it reports.
func (a *app) runTopologies(ctx context.Context, files []string, dryRun bool, call func(context.Context, labv1.LabServiceClient, *labv1.Topology) ([]*labv1.Change, error)) error {
	tops, err := a.readTopologies(files)
	if err != nil {
		return err
	}
	c, err := a.labs()
	if err != nil {
		return err
	}
	var all []*labv1.Change
	for _, t := range tops {
		changes, err := unary(a, ctx, func(ctx context.Context) ([]*labv1.Change, error) { return call(ctx, c, t) })
		if err != nil {
			return err
		}
		if a.output == outputTable {
			a.printChanges(changes, dryRun)
		}
		all = append(all, changes...)
	}
	if a.output != outputTable {
		return a.printChangesDocument(all)
	}
	return nil
}

// printChanges prints one line per change, kubectl-style: "host/h1
// configured".
func (a *app) printChanges(changes []*labv1.Change, dryRun bool) {
	suffix := ""
	if dryRun {
		suffix = " (dry run)"
	}
	for _, ch := range changes {
		fmt.Fprintf(a.stdout, "%s %s%s\n", kindID(ch.GetName()), actionWord(ch.GetAction()), suffix)
	}
}

// printChangesDocument prints the changes as one JSON or YAML document.
func (a *app) printChangesDocument(changes []*labv1.Change) error {
	b, err := marshalJSON(&labv1.ApplyResponse{Changes: changes})
	if err != nil {
		return err
	}
	return a.printDocument(b)
}

// actionWord is what kubectl prints for a change.
func actionWord(act labv1.ChangeAction) string {
	switch act {
	case labv1.ChangeAction_CHANGE_ACTION_CREATED:
		return "created"
	case labv1.ChangeAction_CHANGE_ACTION_CONFIGURED:
		return "configured"
	case labv1.ChangeAction_CHANGE_ACTION_UNCHANGED:
		return "unchanged"
	case labv1.ChangeAction_CHANGE_ACTION_DELETED:
		return "deleted"
	case labv1.ChangeAction_CHANGE_ACTION_NOT_FOUND:
		return "not found"
	}
	return "changed"
}
