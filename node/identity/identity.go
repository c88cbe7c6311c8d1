// Package identity is who is who on labnet's API, as the state stores it:
// roles, bearer tokens (made, parsed and hashed here; stored as hashes),
// lab owners, and the Directory that reads them. node/lab stores them and
// node/auth decides with them; this package links neither gRPC nor the
// store, so the lab model does not either.
package identity

import "time"

// Role is what a user may do.
type Role string

// The roles (docs/security.md has the table).
const (
	// Admin may do everything: the teacher.
	Admin Role = "admin"
	// Student creates labs and has full control of the labs they own;
	// they view labs that are shared.
	Student Role = "student"
	// Viewer reads every lab and node and writes nothing.
	Viewer Role = "viewer"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == Admin || r == Student || r == Viewer }

// TokenKind tells what a token may be used for.
type TokenKind string

// The kinds of token.
const (
	// Session tokens make every call their user may make.
	Session TokenKind = "session"
	// Invite tokens only log in (AuthService.Login uses them up) and ask
	// WhoAmI.
	Invite TokenKind = "invite"
)

// Token is a stored token: never its secret, only the secret's hash.
type Token struct {
	ID          string
	User        string
	Kind        TokenKind
	Hash        [32]byte // SHA-256 of the secret (HashSecret)
	Created     time.Time
	Expires     time.Time
	Description string
}

// LabInfo is what the policy needs of a lab.
type LabInfo struct {
	Owner  string // user id; "" for none
	Shared bool
}

// Directory reads the users, tokens and lab owners of the control plane's
// state (the local replica: every node can check every call). node/lab
// implements it over the store.
type Directory interface {
	// User is the role of user id; ok is false when there is no such
	// user.
	User(id string) (role Role, ok bool)
	// Token is the token with public id; ok is false when there is none
	// (never issued, or revoked).
	Token(id string) (t Token, ok bool)
	// Lab is lab id's owner and sharing; ok is false when there is no
	// such lab.
	Lab(id string) (info LabInfo, ok bool)
	// HostOwner is the user who operates host id of lab besides the lab's
	// owner (labv1.Host.owner); "" for none, or no such host.
	HostOwner(lab, id string) string
	// Node is node name's enrolled identity; ok is false when it has no
	// record (not yet replicated, or enrolled before records existed).
	Node(name string) (n NodeInfo, ok bool)
}

// NodeInfo is what the API checks of a calling node's certificate: the
// serial of the certificate its identity record names, and whether it
// was removed.
type NodeInfo struct {
	Serial  string // hex, lower case
	Removed bool
	// NotBefore is the recorded certificate's start: a certificate of
	// the node that starts no earlier and has another serial is newer
	// (re-signed since; certificates count time in seconds). Zero when
	// the record does not say.
	NotBefore time.Time
}
