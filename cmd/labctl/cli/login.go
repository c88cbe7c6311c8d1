package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func (a *app) newLoginCommand() *cobra.Command {
	var pin, description string
	var ttl ttlFlag
	cmd := &cobra.Command{
		Use:   "login --server HOST:PORT --ca-hash sha256:HASH --token TOKEN",
		Short: "Log in to a labd and save a context for it",
		Long: `Check that the server's certificate comes from the cluster CA whose hash is
--ca-hash (as kubeadm join's --discovery-token-ca-cert-hash), then ask it
who TOKEN is. An invite token (labctl user invite) is exchanged for a
session token. The server, its CA and the token are saved as a context in
labctl's config file and made the current context.

A server whose CA does not match is refused before the token is sent.
Without --ca-hash, login works only with a labd on this machine (loopback).

The context is called USER@SERVER unless --context names it.`,
		Example: "  labctl login --server 10.0.0.5:7700 --ca-hash sha256:4d2f... --token lnt_...",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.login(cmd.Context(), pin, ttl.d, description)
		},
	}
	f := cmd.Flags()
	f.StringVar(&pin, "ca-hash", "", "hash of the cluster CA the server must present (sha256:...)")
	f.Var(&ttl, "ttl", "lifetime of the session token an invite is exchanged for (30d when unset)")
	f.StringVar(&description, "description", "labctl login", "description of the session token")
	return cmd
}

func (a *app) login(ctx context.Context, pin string, ttl time.Duration, description string) error {
	server := firstSet(a.server, a.getenv(EnvServer))
	if server == "" {
		return errors.New("login needs --server HOST:PORT (labctl user invite prints the whole line)")
	}
	token := firstSet(a.token, a.getenv(EnvToken))
	if token == "" {
		return errors.New("login needs --token TOKEN (labctl user invite prints the whole line)")
	}
	var pinned *pinnedTLS
	if pin == "" {
		if !isLoopback(server) {
			return fmt.Errorf("login to %s needs --ca-hash sha256:... to check the server before the token is sent (labctl user invite prints it)", server)
		}
		ep := endpoint{server: server, token: token}
		if err := a.localCA(&ep); err != nil {
			return err
		}
		creds, err := transportFor(ep)
		if err != nil {
			return err
		}
		if err := a.dialServer(server, creds, token, ep.ca == nil); err != nil {
			return err
		}
		pinned = &pinnedTLS{ca: ep.ca}
	} else {
		var err error
		if pin, err = checkCAHash(pin); err != nil {
			return err
		}
		pinned = newPinnedTLS(server, pin)
		if err := a.dialServer(server, pinned.credentials(), token, false); err != nil {
			return err
		}
	}
	// pinnedErr prefers the handshake's own reason to gRPC's Unavailable.
	pinnedErr := func(err error) error {
		if _, perr := pinned.result(); perr != nil {
			return perr
		}
		return err
	}
	who, err := unary(a, ctx, func(ctx context.Context) (*labv1.WhoAmIResponse, error) {
		return a.ac.WhoAmI(ctx, &labv1.WhoAmIRequest{})
	})
	if err != nil {
		return pinnedErr(err)
	}
	if who.GetToken().GetKind() == labv1.TokenKind_TOKEN_KIND_INVITE {
		req := &labv1.LoginRequest{Description: description}
		if ttl > 0 {
			req.Ttl = durationpb.New(ttl)
		}
		resp, err := unary(a, ctx, func(ctx context.Context) (*labv1.LoginResponse, error) {
			return a.ac.Login(ctx, req)
		})
		if err != nil {
			return pinnedErr(err)
		}
		token = resp.GetSecret()
	}
	ca, _ := pinned.result()
	user := shortID(who.GetUser())
	cx := &ConfigContext{Name: firstSet(a.contextName, user+"@"+server), Server: server, Token: token}
	if ca != nil {
		cx.CA = pemOf(ca)
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	cfg.Put(cx)
	cfg.CurrentContext = cx.Name
	if err := a.saveConfig(); err != nil {
		return fmt.Errorf("logged in, but the context is not saved: %w", err)
	}
	_, err = fmt.Fprintf(a.stdout, "Logged in to %s as %s (%s); context %q is current.\n", server, user, roleName(who.GetRole()), cx.Name)
	return err
}

// localCA reads the CA from labd's data directory on this machine, for a
// login to a loopback server without --ca-hash.
func (a *app) localCA(ep *endpoint) error {
	saved := ep.token
	if err := a.localCredential(ep); err != nil {
		return err
	}
	ep.token = saved
	return nil
}

func (a *app) newLogoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the current context's token and remove the context",
		Long: `Revoke the token of the current context (or of --context) on its server,
then remove the context from labctl's config file. A token the server no
longer knows (expired, revoked) is not an error: the context is removed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return a.logout(cmd.Context()) },
	}
}

func (a *app) logout(ctx context.Context) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	cx, err := a.context(cfg)
	if err != nil {
		return err
	}
	if cx == nil {
		return errors.New("not logged in: there is no current context")
	}
	revoked := "no token"
	if cx.Token != "" {
		ep := endpoint{server: cx.Server, token: cx.Token}
		if cx.CA != "" {
			if ep.ca, err = parseCA([]byte(cx.CA)); err != nil {
				return fmt.Errorf("context %s: ca: %w", cx.Name, err)
			}
		}
		creds, err := transportFor(ep)
		if err != nil {
			return err
		}
		if err := a.dialServer(ep.server, creds, ep.token, ep.ca == nil); err != nil {
			return err
		}
		revoked, err = a.revokeOwnToken(ctx)
		if err != nil {
			// errorMessage, not %w: the line must keep this prefix.
			return fmt.Errorf("context %s kept, its token not revoked (labctl config delete-context %s removes it anyway): %s", cx.Name, cx.Name, a.errorMessage(err))
		}
	}
	cfg.Delete(cx.Name)
	if err := a.saveConfig(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "Logged out: %s; context %q removed.\n", revoked, cx.Name)
	return err
}

// revokeOwnToken revokes the token of this connection and says what it
// did.
func (a *app) revokeOwnToken(ctx context.Context) (string, error) {
	who, err := unary(a, ctx, func(ctx context.Context) (*labv1.WhoAmIResponse, error) {
		return a.ac.WhoAmI(ctx, &labv1.WhoAmIRequest{})
	})
	if status.Code(err) == codes.Unauthenticated {
		return "the server no longer accepts its token", nil
	}
	if err != nil {
		return "", err
	}
	name := who.GetToken().GetName()
	_, err = unary(a, ctx, func(ctx context.Context) (*labv1.RevokeTokenResponse, error) {
		return a.ac.RevokeToken(ctx, &labv1.RevokeTokenRequest{Name: name})
	})
	if err != nil {
		return "", err
	}
	return "token " + shortID(name) + " revoked", nil
}

func (a *app) newWhoAmICommand() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the user, role and token labctl calls labd with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.authService()
			if err != nil {
				return err
			}
			who, err := unary(a, cmd.Context(), func(ctx context.Context) (*labv1.WhoAmIResponse, error) {
				return c.WhoAmI(ctx, &labv1.WhoAmIRequest{})
			})
			if err != nil {
				return err
			}
			if a.output != outputTable {
				return a.printObjects([]proto.Message{who}, true)
			}
			tok := who.GetToken()
			expires := "never"
			if t := tok.GetExpireTime(); t != nil {
				expires = t.AsTime().UTC().Format(time.RFC3339)
			}
			return writeSections(a.stdout, section{
				"User:\t" + shortID(who.GetUser()),
				"Role:\t" + roleName(who.GetRole()),
				"Token:\t" + orNone(shortID(tok.GetName())) + " (" + tokenKindName(tok.GetKind()) + ")",
				"Expires:\t" + expires,
				"Server:\t" + a.server,
			})
		},
	}
}

// roleName is ROLE_STUDENT as "student".
func roleName(r labv1.Role) string {
	if r == labv1.Role_ROLE_UNSPECIFIED {
		return "unknown"
	}
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// parseRole is the inverse of roleName.
func parseRole(s string) (labv1.Role, error) {
	if r, ok := labv1.Role_value["ROLE_"+strings.ToUpper(s)]; ok && r != 0 {
		return labv1.Role(r), nil
	}
	return 0, fmt.Errorf("unknown role %q (want admin, student or viewer)", s)
}

// tokenKindName is TOKEN_KIND_INVITE as "invite".
func tokenKindName(k labv1.TokenKind) string {
	if k == labv1.TokenKind_TOKEN_KIND_UNSPECIFIED {
		return "session"
	}
	return strings.ToLower(strings.TrimPrefix(k.String(), "TOKEN_KIND_"))
}
