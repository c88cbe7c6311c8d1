package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// verbs are the verbs of labd's policy (docs/security.md).
var verbs = []string{"get", "list", "watch", "create", "update", "delete", "exec", "capture", "impair", "transfer"}

func (a *app) newAuthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Ask labd what you (or another user) may do",
	}
	cmd.AddCommand(a.newCanICommand())
	return cmd
}

func (a *app) newCanICommand() *cobra.Command {
	var as string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "can-i VERB RESOURCE",
		Short: "Ask whether a call is allowed: prints yes or no, exits 0 or 1",
		Long: `Ask labd whether you may do VERB on RESOURCE, as kubectl auth can-i does:
it prints yes (exit status 0) or no and why (exit status 1).

VERB is one of get, list, watch, create, update, delete, exec (ping,
traceroute, fetch, bench, sockets), capture, impair (set a host's
impairments) or transfer (hand a lab to another user).

RESOURCE is a resource name (labs/net1, labs/net1/hosts/h1, nodes/n1,
users/bob), a collection (labs, nodes, users), or kind/name as get prints
it: lab/net1, host/net1/h1 (host/h1 with --lab net1, or when h1 is in one
lab), network/net1/lan1, node/n1, user/bob.

--as asks for another user (admins only).`,
		Example: "  labctl auth can-i delete lab/net1\n  labctl auth can-i exec host/net1/h1 --as alice\n  labctl auth can-i create labs",
		Args:    exactArgs("VERB RESOURCE", 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			verb := strings.ToLower(args[0])
			if !slices.Contains(verbs, verb) {
				return fmt.Errorf("unknown verb %q (want %s)", args[0], strings.Join(verbs, ", "))
			}
			resource, err := a.resourceRef(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			req := &labv1.CanIRequest{Verb: verb, Resource: resource}
			if as != "" {
				if req.User, err = userRef(as); err != nil {
					return err
				}
			}
			c, err := a.authService()
			if err != nil {
				return err
			}
			resp, err := unary(a, cmd.Context(), func(ctx context.Context) (*labv1.CanIResponse, error) {
				return c.CanI(ctx, req)
			})
			if err != nil {
				return err
			}
			if resp.GetAllowed() {
				if !quiet {
					fmt.Fprintln(a.stdout, "yes")
				}
				return nil
			}
			if !quiet {
				line := "no"
				if r := resp.GetReason(); r != "" {
					line += " - " + oneLine(r)
				}
				fmt.Fprintln(a.stdout, line)
			}
			return &exitError{code: 1}
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "ask for this user instead of yourself (admins)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing: only the exit status answers")
	return cmd
}

// resourceRef turns a RESOURCE of can-i into a resource name.
func (a *app) resourceRef(ctx context.Context, ref string) (string, error) {
	k, rest, ok := strings.Cut(ref, "/")
	if !ok {
		switch ref {
		case "labs", "nodes", "users":
			return ref, nil
		}
		return "", fmt.Errorf("invalid resource %q (want a name such as lab/net1, host/net1/h1, labs/net1 or a collection: labs, nodes, users)", ref)
	}
	switch k {
	case "labs", "nodes", "users":
		return ref, nil
	case "lab":
		return labRef(rest)
	case "node":
		return nodeRef(rest)
	case "user":
		return userRef(rest)
	case "host":
		return a.resolve(ctx, collHosts, rest)
	case "network", "net":
		return a.resolve(ctx, collNetworks, rest)
	}
	return "", fmt.Errorf("invalid resource %q: unknown kind %q (want lab, host, network, node or user)", ref, k)
}
