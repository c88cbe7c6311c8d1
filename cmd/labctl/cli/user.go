package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

const kindUser kind = "user"

func (a *app) newUserCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, list, delete and invite users (admins)",
		Long: `Users of labd and their roles: admin (everything: the teacher), student
(creates labs and has full control of their own; sees shared labs) and
viewer (reads everything, writes nothing). docs/security.md has the table.`,
	}
	cmd.AddCommand(a.newUserAddCommand(), a.newUserListCommand(), a.newUserDeleteCommand(), a.newUserInviteCommand())
	return cmd
}

// userRef turns "alice" or "users/alice" into "users/alice".
func userRef(ref string) (string, error) {
	id := strings.TrimPrefix(ref, "users/")
	if id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("invalid user name %q", ref)
	}
	return "users/" + id, nil
}

func (a *app) newUserAddCommand() *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:     "add NAME",
		Short:   "Add a user with a role",
		Example: "  labctl user add alice --role student",
		Args:    exactArgs("NAME", 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRole(role)
			if err != nil {
				return err
			}
			name, err := userRef(args[0])
			if err != nil {
				return err
			}
			u, err := a.createUser(cmd.Context(), name, r)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "user/%s created (%s)\n", shortID(u.GetName()), roleName(u.GetRole()))
			return err
		},
	}
	cmd.Flags().StringVar(&role, "role", "student", "admin, student or viewer")
	_ = cmd.RegisterFlagCompletionFunc("role", roleCompletions)
	return cmd
}

var roleCompletions = cobra.FixedCompletions([]string{"admin", "student", "viewer"}, cobra.ShellCompDirectiveNoFileComp)

func (a *app) createUser(ctx context.Context, name string, r labv1.Role) (*labv1.User, error) {
	c, err := a.authService()
	if err != nil {
		return nil, err
	}
	resp, err := unary(a, ctx, func(ctx context.Context) (*labv1.CreateUserResponse, error) {
		return c.CreateUser(ctx, &labv1.CreateUserRequest{UserId: shortID(name), User: &labv1.User{Role: r}})
	})
	return resp.GetUser(), err
}

func (a *app) newUserListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the users",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.authService()
			if err != nil {
				return err
			}
			resp, err := unary(a, cmd.Context(), func(ctx context.Context) (*labv1.ListUsersResponse, error) {
				return c.ListUsers(ctx, &labv1.ListUsersRequest{})
			})
			if err != nil {
				return err
			}
			now := a.now()
			return printList(a, kindUser, resp.GetUsers(), false, []string{"NAME", "ROLE", "AGE"}, func(u *labv1.User) []string {
				return []string{shortID(u.GetName()), roleName(u.GetRole()), age(now, u.GetCreateTime())}
			})
		},
	}
}

func (a *app) newUserDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete users and revoke their tokens (their labs stay)",
		Args:  someArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.authService()
			if err != nil {
				return err
			}
			for _, ref := range args {
				name, err := userRef(ref)
				if err != nil {
					return err
				}
				if _, err := unary(a, cmd.Context(), func(ctx context.Context) (*labv1.DeleteUserResponse, error) {
					return c.DeleteUser(ctx, &labv1.DeleteUserRequest{Name: name})
				}); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "user/%s deleted\n", shortID(name))
			}
			return nil
		},
	}
}

func (a *app) newUserInviteCommand() *cobra.Command {
	var role string
	ttl := ttlFlag{d: time.Hour}
	cmd := &cobra.Command{
		Use:   "invite NAME",
		Short: "Print the one labctl login line a user runs to get a context",
		Long: `Create the user if there is none (with --role), make a short-lived invite
token for them, and print the one line they run, on their own machine, to
log in: labctl login with this server's address, the hash of the cluster CA
and the token. The invite works once: login exchanges it for a session
token.`,
		Example: "  labctl user invite alice\n  labctl user invite carol --role viewer --ttl 15m",
		Args:    exactArgs("NAME", 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRole(role)
			if err != nil {
				return err
			}
			name, err := userRef(args[0])
			if err != nil {
				return err
			}
			return a.invite(cmd.Context(), name, r, cmd.Flags().Changed("role"), ttl.d)
		},
	}
	cmd.Flags().StringVar(&role, "role", "student", "role of the user when they are new: admin, student or viewer")
	cmd.Flags().Var(&ttl, "ttl", "how long the invite may be used")
	_ = cmd.RegisterFlagCompletionFunc("role", roleCompletions)
	return cmd
}

func (a *app) invite(ctx context.Context, name string, r labv1.Role, roleSet bool, ttl time.Duration) error {
	c, err := a.authService()
	if err != nil {
		return err
	}
	got, err := unary(a, ctx, func(ctx context.Context) (*labv1.GetUserResponse, error) {
		return c.GetUser(ctx, &labv1.GetUserRequest{Name: name})
	})
	switch {
	case status.Code(err) == codes.NotFound:
		if _, err := a.createUser(ctx, name, r); err != nil {
			return err
		}
	case err != nil:
		return err
	case roleSet && got.GetUser().GetRole() != r:
		fmt.Fprintf(a.stderr, "note: user %s is already a %s; --role %s is not applied\n", shortID(name), roleName(got.GetUser().GetRole()), roleName(r))
	}
	req := &labv1.CreateTokenRequest{Parent: name, Kind: labv1.TokenKind_TOKEN_KIND_INVITE, Description: "invite"}
	if ttl > 0 {
		req.Ttl = durationpb.New(ttl)
	}
	tok, err := unary(a, ctx, func(ctx context.Context) (*labv1.CreateTokenResponse, error) {
		return c.CreateToken(ctx, req)
	})
	if err != nil {
		return err
	}
	line := "labctl login --server " + firstSet(tok.GetServer(), a.server)
	if h := tok.GetCaHash(); h != "" {
		line += " --ca-hash " + h
	}
	_, err = fmt.Fprintln(a.stdout, line+" --token "+tok.GetSecret())
	return err
}
