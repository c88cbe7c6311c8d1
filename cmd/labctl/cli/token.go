package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

const kindToken kind = "token"

// everyUser is the parent that lists every user's tokens (admins).
const everyUser = "users/-"

func (a *app) newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke bearer tokens",
		Long: `Bearer tokens of labd's users. A token's secret is shown once, when it is
made; labd keeps only its hash. A user manages their own tokens, an admin
anyone's. A revoked token is refused by every node at once.`,
	}
	cmd.AddCommand(a.newTokenCreateCommand(), a.newTokenListCommand(), a.newTokenRevokeCommand())
	return cmd
}

func (a *app) newTokenCreateCommand() *cobra.Command {
	var user, description string
	var ttl ttlFlag
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make a session token and print its secret (once)",
		Example: "  labctl token create --description ci --ttl 7d\n" +
			"  labctl token create --user alice",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			parent, err := a.tokenParent(cmd.Context(), user)
			if err != nil {
				return err
			}
			req := &labv1.CreateTokenRequest{Parent: parent, Kind: labv1.TokenKind_TOKEN_KIND_SESSION, Description: description}
			if ttl.d > 0 {
				req.Ttl = durationpb.New(ttl.d)
			}
			resp, err := unary(a, cmd.Context(), func(ctx context.Context) (*labv1.CreateTokenResponse, error) {
				return a.ac.CreateToken(ctx, req)
			})
			if err != nil {
				return err
			}
			expires := "never"
			if t := resp.GetToken().GetExpireTime(); t != nil {
				expires = t.AsTime().UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(a.stderr, "token %s of %s, expires %s; its secret is shown only now:\n",
				shortID(resp.GetToken().GetName()), userOfToken(resp.GetToken().GetName()), expires)
			_, err = fmt.Fprintln(a.stdout, resp.GetSecret())
			return err
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "user to make the token for (admins); default: yourself")
	cmd.Flags().Var(&ttl, "ttl", "lifetime (30d when unset, at most 1 year)")
	cmd.Flags().StringVar(&description, "description", "", "what the token is for, shown by token list")
	return cmd
}

// tokenParent is "users/USER", or the caller's own user when user is
// empty (one WhoAmI). It connects.
func (a *app) tokenParent(ctx context.Context, user string) (string, error) {
	c, err := a.authService()
	if err != nil {
		return "", err
	}
	if user != "" {
		return userRef(user)
	}
	who, err := unary(a, ctx, func(ctx context.Context) (*labv1.WhoAmIResponse, error) {
		return c.WhoAmI(ctx, &labv1.WhoAmIRequest{})
	})
	if err != nil {
		return "", err
	}
	return who.GetUser(), nil
}

func (a *app) newTokenListCommand() *cobra.Command {
	var user string
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tokens (yours; --user or --all for admins)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && user != "" {
				return errors.New("--user and --all cannot be used together")
			}
			parent := everyUser
			if !all {
				var err error
				if parent, err = a.tokenParent(cmd.Context(), user); err != nil {
					return err
				}
			}
			toks, err := a.listTokens(cmd.Context(), parent)
			if err != nil {
				return err
			}
			now := a.now()
			return printList(a, kindToken, toks, false, []string{"ID", "USER", "KIND", "DESCRIPTION", "EXPIRES", "AGE"}, func(t *labv1.Token) []string {
				expires := "never"
				if e := t.GetExpireTime(); e != nil {
					expires = "in " + humanDuration(e.AsTime().Sub(now))
					if !e.AsTime().After(now) {
						expires = "expired"
					}
				}
				return []string{shortID(t.GetName()), userOfToken(t.GetName()), tokenKindName(t.GetKind()), orNone(t.GetDescription()), expires, age(now, t.GetCreateTime())}
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "list this user's tokens (admins)")
	cmd.Flags().BoolVar(&all, "all", false, "list every user's tokens (admins)")
	return cmd
}

func (a *app) listTokens(ctx context.Context, parent string) ([]*labv1.Token, error) {
	c, err := a.authService()
	if err != nil {
		return nil, err
	}
	resp, err := unary(a, ctx, func(ctx context.Context) (*labv1.ListTokensResponse, error) {
		return c.ListTokens(ctx, &labv1.ListTokensRequest{Parent: parent})
	})
	return resp.GetTokens(), err
}

func (a *app) newTokenRevokeCommand() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "revoke TOKEN...",
		Short: "Revoke tokens: every node refuses them from then on",
		Long: `Revoke tokens. TOKEN is the ID token list shows, USER/ID, the resource name
users/USER/tokens/ID, or the token itself (lnt_...). A bare ID is looked
up among your own tokens, or, for an admin, every user's.`,
		Example: "  labctl token revoke 3xk2m9qa7b\n  labctl token revoke alice/3xk2m9qa7b",
		Args:    someArgs("TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.authService()
			if err != nil {
				return err
			}
			for _, ref := range args {
				name, err := a.resolveToken(cmd.Context(), user, ref)
				if err != nil {
					return err
				}
				if _, err := unary(a, cmd.Context(), func(ctx context.Context) (*labv1.RevokeTokenResponse, error) {
					return c.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: name})
				}); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "token %s of %s revoked\n", shortID(name), userOfToken(name))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user whose token a bare ID is")
	return cmd
}

// resolveToken turns what the user typed into "users/USER/tokens/ID".
func (a *app) resolveToken(ctx context.Context, user, ref string) (string, error) {
	if strings.HasPrefix(ref, "lnt_") {
		ref = tokenID(ref)
	}
	parts := strings.Split(ref, "/")
	switch {
	case len(parts) == 4 && parts[0] == "users" && parts[2] == "tokens" && parts[1] != "" && parts[3] != "":
		return ref, nil
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return "users/" + parts[0] + "/tokens/" + parts[1], nil
	case len(parts) != 1 || ref == "" || ref == none:
		return "", fmt.Errorf("invalid token %q (want ID, USER/ID or users/USER/tokens/ID)", ref)
	}
	if user != "" {
		u, err := userRef(user)
		return u + "/tokens/" + ref, err
	}
	c, err := a.authService()
	if err != nil {
		return "", err
	}
	who, err := unary(a, ctx, func(ctx context.Context) (*labv1.WhoAmIResponse, error) {
		return c.WhoAmI(ctx, &labv1.WhoAmIRequest{})
	})
	if err != nil {
		return "", err
	}
	parent := who.GetUser()
	if who.GetRole() == labv1.Role_ROLE_ADMIN {
		parent = everyUser
	}
	toks, err := a.listTokens(ctx, parent)
	if err != nil {
		return "", err
	}
	for _, t := range toks {
		if shortID(t.GetName()) == ref {
			return t.GetName(), nil
		}
	}
	return "", fmt.Errorf("token %q not found", ref)
}

// tokenID is the public id of a token "lnt_ID_SECRET", or <none> for
// something else.
func tokenID(token string) string {
	rest, ok := strings.CutPrefix(token, "lnt_")
	id, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || id == "" {
		return none
	}
	return id
}

// userOfToken is USER of "users/USER/tokens/ID".
func userOfToken(name string) string {
	parts := strings.Split(name, "/")
	if len(parts) == 4 {
		return parts[1]
	}
	return none
}

// ttlFlag is a lifetime: a Go duration (90m, 12h) or whole days or weeks
// (30d, 2w).
type ttlFlag struct{ d time.Duration }

func (f *ttlFlag) String() string {
	if f.d == 0 {
		return ""
	}
	if f.d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(f.d/(24*time.Hour)), 10) + "d"
	}
	return f.d.String()
}

func (f *ttlFlag) Set(s string) error {
	d, err := parseTTL(s)
	if err != nil {
		return err
	}
	f.d = d
	return nil
}

func (f *ttlFlag) Type() string { return "duration" }

func parseTTL(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseUint(n, 10, 16)
			if err != nil || v == 0 {
				return 0, fmt.Errorf("%q is not a lifetime such as 12h, 30d or 2w", s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a lifetime such as 12h, 30d or 2w", s)
	}
	return d, nil
}
