// Package auth is who may do what on labnet's API: principals (users with
// a role, and labnet nodes), bearer tokens, the cluster CA and the
// certificates it signs, the policy over resource names, and the gRPC
// interceptors that apply it to every call in one place.
//
// The users, tokens and lab owners live in the control plane's state
// (node/lab reads and writes them); auth reads them through Directory.
// docs/security.md explains the model.
package auth

import (
	"context"

	"github.com/labnet-dev/labnet/node/identity"
)

// The identity types, as node/auth's callers know them (node/identity
// defines them without gRPC, for node/lab).
type (
	Role      = identity.Role
	TokenKind = identity.TokenKind
	Token     = identity.Token
	LabInfo   = identity.LabInfo
	Directory = identity.Directory
)

// The roles and kinds of token.
const (
	Admin   = identity.Admin
	Student = identity.Student
	Viewer  = identity.Viewer
	Session = identity.Session
	Invite  = identity.Invite
)

// Verb is what a call does to a resource.
type Verb string

// The verbs. Every RPC maps to one (methods.go).
const (
	Get    Verb = "get"
	List   Verb = "list"
	Watch  Verb = "watch"
	Create Verb = "create"
	Update Verb = "update" // includes impairments
	Delete Verb = "delete"
	// Exec is a live call from a host: ping, traceroute, fetch, bench,
	// sockets (dial, expose, accept, datagrams).
	Exec Verb = "exec"
	// Capture taps a host's or network's packets.
	Capture Verb = "capture"
	// Transfer changes a lab's owner.
	Transfer Verb = "transfer"
	// Impair sets a host's impairments (loss, delay, ...): an update a
	// host's owner may make without owning the lab.
	Impair Verb = "impair"
)

// Verbs is every verb, for messages and `labctl auth can-i`.
var Verbs = []Verb{Get, List, Watch, Create, Update, Delete, Exec, Capture, Impair, Transfer}

// Principal is who makes a call: a user (User set), or a labnet node
// acting for itself (Node set, User empty: only the node-to-node calls).
// A call a node forwards for a user has User and Role of that user and Via
// naming the node.
type Principal struct {
	User string // user id, "alice"
	Role Role
	// TokenID is the id of the bearer token the user presented; on a
	// forwarded call, the id the forwarding node names (checked to exist
	// here), or empty when it names none.
	TokenID   string
	TokenKind TokenKind
	// Node is the node, for a node's own calls.
	Node string
	// Via is the node that forwarded the user's call.
	Via string
}

// String names the principal in logs: "alice", "alice via node-2",
// "node node-2".
func (p *Principal) String() string {
	switch {
	case p == nil:
		return "anonymous"
	case p.User == "" && p.Node != "":
		return "node " + p.Node
	case p.Via != "":
		return p.User + " via " + p.Via
	default:
		return p.User
	}
}

// IsNode reports whether p is a node acting for itself.
func (p *Principal) IsNode() bool { return p != nil && p.User == "" && p.Node != "" }

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext is the principal of a call; ok is false when there is none
// (a server without the interceptor: tests, tools).
func FromContext(ctx context.Context) (p *Principal, ok bool) {
	p, ok = ctx.Value(ctxKey{}).(*Principal)
	return p, ok && p != nil
}
