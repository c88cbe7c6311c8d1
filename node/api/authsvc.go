package api

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// authServer serves AuthService: users, their tokens, and the caller's
// own identity. Who may call what is node/auth's interceptor's to decide
// (it has already, by the time a handler runs); the handlers trust the
// principal in the context, and check only what depends on the kind of
// principal: Login takes an invite, CanI asks for another user only for
// an admin. Writes go through the Writer like every write (forwarded to
// the control plane's leader); token secrets are never stored, only
// their hashes (identity.NewToken).
type authServer struct {
	labv1.UnimplementedAuthServiceServer
	s *Server
}

// Token lifetimes (docs/security.md).
const (
	sessionTTL = 30 * 24 * time.Hour
	inviteTTL  = time.Hour
	maxTTL     = 365 * 24 * time.Hour
	// maxDescription bounds a token's description, in bytes.
	maxDescription = 256
)

// needToken is what a call without a user is told.
const needToken = "this call needs a token: run `labctl login` (or set LABCTL_TOKEN)"

// caller is the user who makes the call: Unauthenticated without a
// principal, PermissionDenied for a node acting for itself.
func caller(ctx context.Context) (*auth.Principal, error) {
	p := principal(ctx)
	switch {
	case p == nil:
		return nil, status.Error(codes.Unauthenticated, needToken)
	case p.User == "":
		return nil, status.Errorf(codes.PermissionDenied, "%s is not a user", p)
	}
	return p, nil
}

func (a *authServer) replica() lab.StoreGetter { return lab.StoreGetter{St: a.s.cfg.Store} }

func (a *authServer) WhoAmI(ctx context.Context, _ *labv1.WhoAmIRequest) (*labv1.WhoAmIResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	resp := &labv1.WhoAmIResponse{User: lab.UserName(p.User), Role: roleProto(p.Role)}
	if p.TokenID != "" {
		t, ok := lab.GetToken(a.replica(), p.TokenID)
		if !ok { // revoked since the interceptor read it
			t = auth.Token{ID: p.TokenID, User: p.User, Kind: p.TokenKind}
		}
		resp.Token = tokenProto(t)
	}
	return resp, nil
}

func (a *authServer) CanI(ctx context.Context, req *labv1.CanIRequest) (*labv1.CanIResponse, error) {
	verb := auth.Verb(strings.ToLower(req.Verb))
	if !slices.Contains(auth.Verbs, verb) {
		return nil, invalid("verb", "%q is not a verb (%s)", req.Verb, verbList())
	}
	if req.Resource == "" {
		return nil, invalid("resource", "required: a resource name (labs/{lab}, labs/{lab}/hosts/{host}, users/{user}) or a collection (labs, users)")
	}
	dir := lab.NewDirectory(a.s.cfg.Store)
	var who *auth.Principal
	if req.User != "" {
		id, ok := lab.ParseUserName(req.User)
		if !ok && lab.ValidID(req.User) {
			id, ok = req.User, true
		}
		if !ok {
			return nil, invalid("user", "%q is not a user name (users/{user})", req.User)
		}
		if p := principal(ctx); p != nil && p.Role != auth.Admin {
			return nil, status.Errorf(codes.PermissionDenied, "%s may not ask what another user may do: only admins may", p)
		}
		role, ok := dir.User(id)
		if !ok {
			return nil, notFound("user %q not found", id)
		}
		who = &auth.Principal{User: id, Role: role, TokenKind: auth.Session}
	} else {
		p, err := caller(ctx)
		if err != nil {
			return nil, err
		}
		who = p
	}
	err := auth.Authorize(dir, who, verb, req.Resource)
	var denied *auth.DeniedError
	switch {
	case err == nil:
		return &labv1.CanIResponse{Allowed: true}, nil
	case errors.As(err, &denied):
		return &labv1.CanIResponse{Reason: denied.Reason}, nil
	default:
		return nil, err
	}
}

func verbList() string {
	var vs []string
	for _, v := range auth.Verbs {
		vs = append(vs, string(v))
	}
	return strings.Join(vs, ", ")
}

// Login exchanges the caller's invite token for a session token, in one
// write: the invite is used up. Forwarded to the leader, the call names
// the invite's id (forwardContext), and the leader's interceptor makes
// the principal of it as of a bearer token.
func (a *authServer) Login(ctx context.Context, req *labv1.LoginRequest) (*labv1.LoginResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	invite := p.TokenID
	if p.TokenKind != auth.Invite || invite == "" {
		return nil, status.Errorf(codes.PermissionDenied, "%s: login takes an invite token (from `labctl user invite`); to make another session token, run `labctl token create`", p)
	}
	ttl, err := ttlOf("ttl", req.Ttl, sessionTTL)
	if err != nil {
		return nil, err
	}
	if err := checkDescription(req.Description); err != nil {
		return nil, err
	}
	secret, t := a.newToken(p.User, auth.Session, ttl, req.Description)
	err = a.s.update(ctx, func(tx *store.Tx) error {
		inv, ok := lab.GetToken(tx, invite)
		if !ok || inv.Kind != auth.Invite || inv.User != p.User {
			return status.Error(codes.Unauthenticated, "the invite token was used or revoked: ask for a new one (`labctl user invite`)")
		}
		if !inv.Expires.IsZero() && !a.s.cfg.Now().Before(inv.Expires) {
			return status.Error(codes.Unauthenticated, "the invite token expired: ask for a new one (`labctl user invite`)")
		}
		if _, ok := lab.GetUser(tx, p.User); !ok {
			return status.Errorf(codes.Unauthenticated, "user %s no longer exists", p.User)
		}
		lab.DeleteToken(tx, invite)
		return lab.PutToken(tx, t)
	})
	if err != nil {
		return nil, err
	}
	return &labv1.LoginResponse{Token: tokenProto(t), Secret: secret}, nil
}

// newToken makes a token of user: the string to hand them once, and what
// is stored.
func (a *authServer) newToken(user string, kind auth.TokenKind, ttl time.Duration, desc string) (string, auth.Token) {
	secret, id, hash := identity.NewToken()
	now := a.s.cfg.Now()
	return secret, auth.Token{ID: id, User: user, Kind: kind, Hash: hash, Created: now, Expires: now.Add(ttl), Description: desc}
}

// --- users ---

func (a *authServer) CreateUser(ctx context.Context, req *labv1.CreateUserRequest) (*labv1.CreateUserResponse, error) {
	var v violations
	if !lab.ValidID(req.UserId) {
		v.add("user_id", "%q %s", req.UserId, lab.IDRule)
	}
	role := roleOf(req.GetUser().GetRole())
	if role == "" {
		v.add("user.role", "required: admin, student or viewer")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	u := lab.User{ID: req.UserId, Role: role, Created: a.s.cfg.Now()}
	err := a.s.update(ctx, func(tx *store.Tx) error {
		if _, ok := lab.GetUser(tx, u.ID); ok {
			return status.Errorf(codes.AlreadyExists, "user %q already exists", u.ID)
		}
		return lab.PutUser(tx, u)
	})
	if err != nil {
		return nil, err
	}
	return &labv1.CreateUserResponse{User: userProto(u)}, nil
}

func (a *authServer) GetUser(ctx context.Context, req *labv1.GetUserRequest) (*labv1.GetUserResponse, error) {
	id, ok := lab.ParseUserName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a user name (users/{user})", req.Name)
	}
	u, ok := lab.GetUser(a.replica(), id)
	if !ok {
		return nil, notFound("user %q not found", id)
	}
	return &labv1.GetUserResponse{User: userProto(u)}, nil
}

func (a *authServer) ListUsers(ctx context.Context, _ *labv1.ListUsersRequest) (*labv1.ListUsersResponse, error) {
	resp := &labv1.ListUsersResponse{}
	for _, u := range lab.ListUsers(a.s.cfg.Store) {
		resp.Users = append(resp.Users, userProto(u))
	}
	return resp, nil
}

// DeleteUser deletes the user and every token of theirs; their labs stay,
// owned by no one (lab.Disown). The last admin stays: without one nobody
// could manage users again.
func (a *authServer) DeleteUser(ctx context.Context, req *labv1.DeleteUserRequest) (*labv1.DeleteUserResponse, error) {
	id, ok := lab.ParseUserName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a user name (users/{user})", req.Name)
	}
	err := a.s.update(ctx, func(tx *store.Tx) error {
		u, ok := lab.GetUser(tx, id)
		if !ok {
			return notFound("user %q not found", id)
		}
		if u.Role == auth.Admin && admins(tx) <= 1 {
			return status.Errorf(codes.FailedPrecondition, "user %s is the last admin: make another admin first (`labctl user add NAME --role admin`)", id)
		}
		lab.DeleteUser(tx, id)
		_, err := lab.Disown(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &labv1.DeleteUserResponse{}, nil
}

func admins(r lab.Reader) int {
	n := 0
	for _, u := range lab.ListUsers(r) {
		if u.Role == auth.Admin {
			n++
		}
	}
	return n
}

// --- tokens ---

func (a *authServer) CreateToken(ctx context.Context, req *labv1.CreateTokenRequest) (*labv1.CreateTokenResponse, error) {
	user, ok := lab.ParseUserName(req.Parent)
	if !ok {
		return nil, invalid("parent", "%q is not a user name (users/{user})", req.Parent)
	}
	var kind auth.TokenKind
	def := sessionTTL
	switch req.Kind {
	case labv1.TokenKind_TOKEN_KIND_UNSPECIFIED, labv1.TokenKind_TOKEN_KIND_SESSION:
		kind = auth.Session
	case labv1.TokenKind_TOKEN_KIND_INVITE:
		kind, def = auth.Invite, inviteTTL
	default:
		return nil, invalid("kind", "%d is not a kind of token (session or invite)", req.Kind)
	}
	ttl, err := ttlOf("ttl", req.Ttl, def)
	if err != nil {
		return nil, err
	}
	if err := checkDescription(req.Description); err != nil {
		return nil, err
	}
	secret, t := a.newToken(user, kind, ttl, req.Description)
	err = a.s.update(ctx, func(tx *store.Tx) error {
		if _, ok := lab.GetUser(tx, user); !ok {
			return notFound("user %q not found", user)
		}
		return lab.PutToken(tx, t)
	})
	if err != nil {
		return nil, err
	}
	resp := &labv1.CreateTokenResponse{Token: tokenProto(t), Secret: secret}
	if kind == auth.Invite && a.s.cfg.Invite != nil {
		resp.Server, resp.CaHash = a.s.cfg.Invite()
	}
	return resp, nil
}

func (a *authServer) ListTokens(ctx context.Context, req *labv1.ListTokensRequest) (*labv1.ListTokensResponse, error) {
	user := ""
	if req.Parent != lab.AllUsers {
		id, ok := lab.ParseUserName(req.Parent)
		if !ok {
			return nil, invalid("parent", "%q is not a user name (users/{user}, or users/- for every user's tokens)", req.Parent)
		}
		if _, ok := lab.GetUser(a.replica(), id); !ok {
			return nil, notFound("user %q not found", id)
		}
		user = id
	}
	resp := &labv1.ListTokensResponse{}
	for _, t := range lab.ListTokens(a.s.cfg.Store, user) {
		resp.Tokens = append(resp.Tokens, tokenProto(t))
	}
	return resp, nil
}

func (a *authServer) RevokeToken(ctx context.Context, req *labv1.RevokeTokenRequest) (*labv1.RevokeTokenResponse, error) {
	user, id, ok := lab.ParseTokenName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a token name (users/{user}/tokens/{token})", req.Name)
	}
	err := a.s.update(ctx, func(tx *store.Tx) error {
		t, ok := lab.GetToken(tx, id)
		if !ok || user != "-" && t.User != user {
			return notFound("token %s of user %s not found", id, user)
		}
		lab.DeleteToken(tx, id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.RevokeTokenResponse{}, nil
}

// ttlOf is the lifetime field asks for: def when unset, else positive and
// at most maxTTL.
func ttlOf(field string, d *durationpb.Duration, def time.Duration) (time.Duration, error) {
	if d == nil {
		return def, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalid(field, "not a valid duration: %v", err)
	}
	ttl := d.AsDuration()
	switch {
	case ttl <= 0:
		return 0, invalid(field, "%v: must be positive", ttl)
	case ttl > maxTTL:
		return 0, invalid(field, "%v: at most a year (%v)", ttl, maxTTL)
	}
	return ttl, nil
}

func checkDescription(d string) error {
	if len(d) > maxDescription {
		return invalid("description", "%d bytes: at most %d", len(d), maxDescription)
	}
	return nil
}

// --- conversions ---

var roles = map[auth.Role]labv1.Role{
	auth.Admin:   labv1.Role_ROLE_ADMIN,
	auth.Student: labv1.Role_ROLE_STUDENT,
	auth.Viewer:  labv1.Role_ROLE_VIEWER,
}

func roleProto(r auth.Role) labv1.Role { return roles[r] }

// roleOf is r's auth.Role; "" for none.
func roleOf(r labv1.Role) auth.Role {
	for a, p := range roles {
		if p == r {
			return a
		}
	}
	return ""
}

func userProto(u lab.User) *labv1.User {
	return &labv1.User{Name: lab.UserName(u.ID), Role: roleProto(u.Role), CreateTime: timeProto(u.Created)}
}

func tokenProto(t auth.Token) *labv1.Token {
	kind := labv1.TokenKind_TOKEN_KIND_SESSION
	if t.Kind == auth.Invite {
		kind = labv1.TokenKind_TOKEN_KIND_INVITE
	}
	return &labv1.Token{
		Name: lab.TokenName(t.User, t.ID), Kind: kind, Description: t.Description,
		CreateTime: timeProto(t.Created), ExpireTime: timeProto(t.Expires),
	}
}

// timeProto is t, or nil for the zero time (a token without expiry).
func timeProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
