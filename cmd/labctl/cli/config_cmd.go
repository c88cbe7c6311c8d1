package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show and switch the contexts of labctl's config file",
		Long: `labctl's config file ($XDG_CONFIG_HOME/labctl/config, else
~/.config/labctl/config, mode 0600) holds contexts as kubeconfig does: each
a server, the cluster CA its certificate must come from, and a token.
labctl login adds them; one is current. --server, --token, LABCTL_SERVER
and LABCTL_TOKEN override the current context's.`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "get-contexts",
			Short: "List the contexts",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, err := a.config()
				if err != nil {
					return err
				}
				if len(cfg.Contexts) == 0 {
					fmt.Fprintln(a.stderr, "No contexts found: labctl login adds one.")
					return nil
				}
				rows := make([][]string, len(cfg.Contexts))
				for i, cx := range cfg.Contexts {
					cur := ""
					if cx.Name == cfg.CurrentContext {
						cur = "*"
					}
					rows[i] = []string{cur, cx.Name, cx.Server, contextUser(cx)}
				}
				return writeTable(a.stdout, []string{"CURRENT", "NAME", "SERVER", "TOKEN"}, rows)
			},
		},
		&cobra.Command{
			Use:   "current-context",
			Short: "Print the current context's name",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, err := a.config()
				if err != nil {
					return err
				}
				if cfg.CurrentContext == "" {
					return errors.New("no current context: labctl login makes one")
				}
				_, err = fmt.Fprintln(a.stdout, cfg.CurrentContext)
				return err
			},
		},
		&cobra.Command{
			Use:               "use-context NAME",
			Short:             "Make NAME the current context",
			Args:              exactArgs("NAME", 1),
			ValidArgsFunction: a.completeContexts,
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, err := a.config()
				if err != nil {
					return err
				}
				if cfg.Context(args[0]) == nil {
					return fmt.Errorf("no context %q in %s (labctl config get-contexts lists them)", args[0], configPath(a.getenv))
				}
				cfg.CurrentContext = args[0]
				if err := a.saveConfig(); err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "Switched to context %q.\n", args[0])
				return err
			},
		},
		&cobra.Command{
			Use:   "delete-context NAME",
			Short: "Remove a context (its token stays valid: labctl logout revokes it)",
			Long: `Remove the context NAME from the config file. Its token stays valid on the
server: labctl logout --context NAME revokes it and removes the context.`,
			Args:              exactArgs("NAME", 1),
			ValidArgsFunction: a.completeContexts,
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, err := a.config()
				if err != nil {
					return err
				}
				if !cfg.Delete(args[0]) {
					return fmt.Errorf("no context %q in %s", args[0], configPath(a.getenv))
				}
				if err := a.saveConfig(); err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "Deleted context %q.\n", args[0])
				return err
			},
		},
	)
	return cmd
}

// contextUser is the TOKEN column: the token's public id, never its
// secret.
func contextUser(cx *ConfigContext) string {
	if cx.Token == "" {
		return none
	}
	return tokenID(cx.Token)
}

func (a *app) completeContexts(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cfg, err := a.config()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []cobra.Completion
	for _, cx := range cfg.Contexts {
		names = append(names, cx.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
