package auth

import (
	"context"
	"crypto/x509"
	"strings"
	"time"

	"github.com/labnet-dev/labnet/node/identity"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Metadata a labnet node adds to the calls it forwards to another node
// (forward.go); a node trusts the names of users and tokens only from a
// peer presenting a control node's certificate of the cluster CA. A
// member forwards a call with the caller's own bearer token instead
// (ForwardBearer): a student with root on her member labd holds its
// certificate, and must not be able to name another user.
const (
	// ForwardedUserKey names the user a node forwards a call for.
	ForwardedUserKey = "labnet-forwarded-user"
	// ForwardedTokenKey is the public id of the token the user presented
	// to the node that forwards the call (never its secret): the
	// receiving node checks that it still exists, so a revoked token fails
	// there too, and Login knows which invite it uses up.
	ForwardedTokenKey = "labnet-forwarded-token"
	// ForwardedInviteKey is node/api's own name for the id of an invite
	// token it forwards Login with; it counts as ForwardedTokenKey.
	ForwardedInviteKey = "labnet-forwarded-invite"
	// ForwardedByKey is node/api's mark of a forwarded call.
	ForwardedByKey = "labnet-forwarded-by"
)

// forwardingKeys are the metadata only a node may send.
var forwardingKeys = []string{ForwardedUserKey, ForwardedTokenKey, ForwardedInviteKey, ForwardedByKey}

// identityKeys are the forwarding metadata that name a user or a token:
// only a control node may send them.
var identityKeys = []string{ForwardedUserKey, ForwardedTokenKey, ForwardedInviteKey}

const authorizationKey = "authorization"

// How to get a credential, in every Unauthenticated message.
const loginHint = "run `labctl login` (or set LABCTL_TOKEN)"

// authenticate is the principal of a call: a node (from its TLS
// certificate), a user a control node forwards the call for, the user of
// the bearer token a member passes on (Via the member), or the user of
// the bearer token. Errors are Unauthenticated, or PermissionDenied for
// forwarding metadata from a caller that is not a node, and for a
// member's that names a user (NodeRefusedError, "member_forwarded_user").
func authenticate(ctx context.Context, dir Directory, now time.Time, nc nodeCheck) (*Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if node, cert, ok := peerNode(ctx); ok {
		if err := checkNodeIdentity(dir, node, cert, nc); err != nil {
			return nil, err
		}
		if NodeKind(cert) == KindControl {
			return forwardedPrincipal(dir, md, node, now)
		}
		return memberPrincipal(dir, md, node, now)
	}
	for _, k := range forwardingKeys {
		if len(md.Get(k)) > 0 {
			return nil, status.Errorf(codes.PermissionDenied, "metadata %s is accepted only from a labnet node's certificate", k)
		}
	}
	return bearerPrincipal(dir, md.Get(authorizationKey), now)
}

// PeerNode is the node the call's TLS peer is, and its certificate: its
// chain was verified against the cluster CA and names a node. ok is
// false for a peer without such a certificate.
func PeerNode(ctx context.Context) (node string, cert *x509.Certificate, ok bool) {
	return peerNode(ctx)
}

// peerNode is the node the call's TLS peer is: its certificate chain was
// verified (against the cluster CA, the only CA the API's TLS
// configuration trusts for client certificates) and names a node.
func peerNode(ctx context.Context) (string, *x509.Certificate, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return "", nil, false
	}
	var chains [][]*x509.Certificate
	switch ti := p.AuthInfo.(type) {
	case credentials.TLSInfo:
		chains = ti.State.VerifiedChains
	case *credentials.TLSInfo:
		chains = ti.State.VerifiedChains
	default:
		return "", nil, false
	}
	if len(chains) == 0 || len(chains[0]) == 0 {
		return "", nil, false
	}
	name, ok := NodeOf(chains[0][0])
	return name, chains[0][0], ok
}

// nodeCheck is how a call's node certificate is checked against the
// identity records: whether a record is required (this node's own is in
// its replica: Self), and the method called (RecordIdentity is how a
// node gets its record, so it is let through without one).
type nodeCheck struct {
	required func() bool // nil: not required
	method   string
}

// recordIdentityMethod records the calling node's identity.
const recordIdentityMethod = controlSvc + "RecordIdentity"

// checkNodeIdentity refuses a node certificate that the node's identity
// record in the replica (docs/security.md) marks removed, or that is not
// the certificate the record names (an older one, kept by a node that
// enrolled again; or a newer one not recorded yet). A node with no record
// is refused ("unknown_node": not replicated here yet, so the caller
// tries again) once records are required; before, it is let through as
// before records existed. RecordIdentity is let through for a node
// without a record, or with a newer certificate than its record's: it
// is how the record is written (its handler decides).
func checkNodeIdentity(dir Directory, node string, cert *x509.Certificate, nc nodeCheck) error {
	id, ok := dir.Node(node)
	serial := cert.SerialNumber.Text(16)
	switch {
	case !ok && (nc.method == recordIdentityMethod || nc.required == nil || !nc.required()):
		return nil
	case !ok:
		return &NodeRefusedError{Node: node, Reason: "unknown_node", msg: "node " + node + " has no identity record here yet (it is recorded at the leader and replicated): try again"}
	case id.Removed:
		return &NodeRefusedError{Node: node, Reason: "removed", msg: "node " + node + " was removed (labctl node remove): its certificate is refused"}
	case id.Serial == "" || id.Serial == serial:
		return nil
	case !cert.NotBefore.Before(id.NotBefore) && nc.method == recordIdentityMethod:
		return nil
	case !cert.NotBefore.Before(id.NotBefore):
		return &NodeRefusedError{Node: node, Reason: "unknown_certificate", msg: "node " + node + ": this certificate (serial " + serial + ") is newer than the one its identity names and not recorded here yet: try again"}
	}
	return &NodeRefusedError{Node: node, Reason: "old_certificate", msg: "node " + node + ": this certificate (serial " + serial + ") is not the one its identity names: it was replaced"}
}

// NodeRefusedError is a node certificate refused by the node's identity
// record; the interceptor counts it by node and reason (NodeRefusals).
type NodeRefusedError struct {
	Node, Reason string
	msg          string
}

func (e *NodeRefusedError) Error() string { return e.msg }

// GRPCStatus is PermissionDenied.
func (e *NodeRefusedError) GRPCStatus() *status.Status {
	return status.New(codes.PermissionDenied, e.msg)
}

// memberPrincipal is the principal of a call from member node (a
// certificate that is not a control node's, or records no kind): the
// user of the bearer token it passes on, with Via naming the member, or
// the member itself. It may mark the call as forwarded by itself
// (ForwardedByKey, which only stops the call going further), but naming
// a user or a token is refused: whoever has root on a member holds its
// certificate.
func memberPrincipal(dir Directory, md metadata.MD, node string, now time.Time) (*Principal, error) {
	for _, k := range identityKeys {
		if len(md.Get(k)) > 0 {
			return nil, &NodeRefusedError{Node: node, Reason: "member_forwarded_user", msg: "node " + node + " is a member: it may not forward a call as a user (metadata " + k + "); it passes on the caller's own token"}
		}
	}
	if by := md.Get(ForwardedByKey); len(by) > 1 || (len(by) == 1 && by[0] != node) {
		return nil, &NodeRefusedError{Node: node, Reason: "member_forwarded_user", msg: "node " + node + " is a member: metadata " + ForwardedByKey + " may name only itself"}
	}
	if len(md.Get(authorizationKey)) == 0 {
		return &Principal{Node: node}, nil
	}
	p, err := bearerPrincipal(dir, md.Get(authorizationKey), now)
	if err != nil {
		return nil, err
	}
	p.Via = node
	return p, nil
}

// forwardedPrincipal is the principal of a call from control node node:
// the user it forwards the call for, the user of the bearer token it
// passes on (Via the node), or the node itself.
func forwardedPrincipal(dir Directory, md metadata.MD, node string, now time.Time) (*Principal, error) {
	users := md.Get(ForwardedUserKey)
	if len(users) == 0 {
		if len(md.Get(authorizationKey)) > 0 {
			p, err := bearerPrincipal(dir, md.Get(authorizationKey), now)
			if err != nil {
				return nil, err
			}
			p.Via = node
			return p, nil
		}
		return &Principal{Node: node}, nil
	}
	if len(users) > 1 {
		return nil, status.Errorf(codes.Unauthenticated, "node %s forwarded the call for %d users; one is needed", node, len(users))
	}
	user := users[0]
	role, ok := dir.User(user)
	if !ok {
		return nil, status.Errorf(codes.Unauthenticated, "node %s forwarded the call for user %q, who does not exist here: %s", node, user, loginHint)
	}
	if !role.Valid() {
		return nil, badRole(user, role)
	}
	p := &Principal{User: user, Role: role, Via: node, TokenKind: Session}
	ids := md.Get(ForwardedTokenKey)
	if len(ids) == 0 {
		ids = md.Get(ForwardedInviteKey)
	}
	switch {
	case len(ids) > 1:
		return nil, status.Errorf(codes.Unauthenticated, "node %s forwarded the call with %d tokens; at most one is allowed", node, len(ids))
	case len(ids) == 1:
		t, ok := dir.Token(ids[0])
		if !ok || t.User != user {
			return nil, status.Errorf(codes.Unauthenticated, "the token is unknown or revoked: %s", loginHint)
		}
		if expired(t, now) {
			return nil, expiredError(t)
		}
		p.TokenID, p.TokenKind = t.ID, t.Kind
	}
	return p, nil
}

// bearerPrincipal is the user of the bearer token in the authorization
// metadata's values.
func bearerPrincipal(dir Directory, values []string, now time.Time) (*Principal, error) {
	token, err := bearer(values)
	if err != nil {
		return nil, err
	}
	id, secret, err := identity.ParseToken(token)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "the bearer token is not a labnet token (lnt_...): %s", loginHint)
	}
	t, ok := dir.Token(id)
	if !ok || !t.Matches(secret) {
		// One message for both: an unknown id and a wrong secret must
		// not be told apart.
		return nil, status.Errorf(codes.Unauthenticated, "the token is unknown or revoked: %s", loginHint)
	}
	if expired(t, now) {
		return nil, expiredError(t)
	}
	role, ok := dir.User(t.User)
	if !ok {
		return nil, status.Errorf(codes.Unauthenticated, "the token's user %q no longer exists: %s", t.User, loginHint)
	}
	if !role.Valid() {
		return nil, badRole(t.User, role)
	}
	kind := t.Kind
	if kind == "" {
		kind = Session
	}
	return &Principal{User: t.User, Role: role, TokenID: t.ID, TokenKind: kind}, nil
}

// bearer is the token of an "authorization: Bearer TOKEN" header (RFC
// 6750 section 2.1; the scheme is case-insensitive, RFC 9110 section
// 11.1).
func bearer(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", status.Errorf(codes.Unauthenticated, "this call needs a token: %s", loginHint)
	case 1:
	default:
		return "", status.Errorf(codes.Unauthenticated, "the call has %d authorization headers; one is allowed: %s", len(values), loginHint)
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", status.Errorf(codes.Unauthenticated, `the authorization header is not "Bearer TOKEN": %s`, loginHint)
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", status.Errorf(codes.Unauthenticated, "the bearer token is empty: %s", loginHint)
	}
	return token, nil
}

// expired reports whether t has expired at now (a zero expiry never does).
func expired(t Token, now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

func expiredError(t Token) error {
	return status.Errorf(codes.Unauthenticated, "the token expired at %s: run `labctl login` for a new one (or set LABCTL_TOKEN)", t.Expires.UTC().Format(time.RFC3339))
}

// badRole refuses a user whose stored role is none of the roles (a
// damaged record): they may do nothing rather than what an empty role
// happens to allow.
func badRole(user string, r Role) error {
	return status.Errorf(codes.PermissionDenied, "user %q has role %q, which is none of admin, student, viewer: an admin must set it", user, r)
}
