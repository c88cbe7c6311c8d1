package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
)

// Dynamic shell completion. cobra's own "completion" command writes the
// bash, zsh, fish and powershell scripts; these functions answer the scripts'
// questions by asking labd. Failures complete nothing rather than print.

// completeKindThenNames completes a resource type, then names of that type.
func (a *app) completeKindThenNames(kinds ...kind) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			var out []cobra.Completion
			for _, k := range kinds {
				if strings.HasPrefix(k.plural(), toComplete) {
					out = append(out, k.plural())
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		k, err := parseKind(args[0], kinds...)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		switch k {
		case kindLab:
			return a.completeLabs(cmd, args, toComplete)
		case kindNetwork:
			return a.completeNames(ctx, collNetworks, toComplete), cobra.ShellCompDirectiveNoFileComp
		case kindHost:
			return a.completeNames(ctx, collHosts, toComplete), cobra.ShellCompDirectiveNoFileComp
		case kindNode:
			nodes, err := a.listNodes(ctx)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, n := range nodes {
				if id := shortID(n.GetName()); strings.HasPrefix(id, toComplete) {
					out = append(out, cobra.CompletionWithDesc(id, n.GetApiAddress()))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeHostsForArgs completes host names for the first n arguments: for
// ping and traceroute, HOST and then DEST, which may be a host of HOST's lab.
func (a *app) completeHostsForArgs(n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch {
		case len(args) >= n:
			return nil, cobra.ShellCompDirectiveNoFileComp
		case len(args) == 1:
			return a.completeDestinations(cmd.Context(), args[0], toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return a.completeNames(cmd.Context(), collHosts, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeLabs completes lab names (for --lab and "lab" arguments).
func (a *app) completeLabs(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	labs, err := a.listLabs(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, l := range labs {
		if id := shortID(l.GetName()); strings.HasPrefix(id, toComplete) {
			out = append(out, cobra.CompletionWithDesc(id, l.GetDescription()))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeNames completes network or host references: the bare id when it
// names one resource (in --lab, or across all labs), LAB/ID otherwise.
func (a *app) completeNames(ctx context.Context, coll, toComplete string) []cobra.Completion {
	names, err := a.listNames(ctx, coll, a.parent())
	if err != nil {
		return nil
	}
	count := map[string]int{}
	for _, n := range names {
		count[shortID(n)]++
	}
	var out []cobra.Completion
	for _, n := range names {
		ref := shortID(n)
		if a.lab == "" && (count[ref] > 1 || strings.Contains(toComplete, "/")) {
			ref = labOf(n) + "/" + ref
		}
		if strings.HasPrefix(ref, toComplete) {
			out = append(out, cobra.CompletionWithDesc(ref, singular(coll)+" in lab "+labOf(n)))
		}
	}
	return out
}

// completeDestinations completes DEST after HOST: the bare ids of the hosts
// in HOST's lab, which is what the server accepts as a destination name.
func (a *app) completeDestinations(ctx context.Context, hostRef, toComplete string) []cobra.Completion {
	name, err := a.resolve(ctx, collHosts, hostRef)
	if err != nil {
		return nil
	}
	hosts, err := a.listHosts(ctx, labName(labOf(name)))
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, h := range hosts {
		if id := shortID(h.GetName()); strings.HasPrefix(id, toComplete) {
			out = append(out, cobra.CompletionWithDesc(id, role(h)+" in lab "+labOf(name)))
		}
	}
	return out
}
