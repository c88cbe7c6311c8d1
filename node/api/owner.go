package api

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Who may do what is decided once per call, before the handler, by
// node/auth's interceptor. Two things only a handler can do remain here:
// a new lab is owned by the user who creates it, and a write re-checks,
// inside its transaction, that the lab it changes is still the caller's
// to change: between the interceptor's check (against the replica) and
// the commit, another user may have created the lab that did not exist
// yet, and that lab must never be taken over.

// principal is the caller of ctx; nil without one: a server without the
// auth interceptor (api's own tests, tools), which trusts every caller.
func principal(ctx context.Context) *auth.Principal {
	p, _ := auth.FromContext(ctx)
	return p
}

// ownerOf is the owner of a lab the caller of ctx creates: their user id
// ("" without a principal, or for a node acting for itself).
func ownerOf(ctx context.Context) string {
	if p := principal(ctx); p != nil {
		return p.User
	}
	return ""
}

// hostOperation marks a write that a host's owner may make without owning
// the lab (an impairment: auth.Impair): its value is the host's id.
type hostOperation struct{}

// asHostOperation marks ctx's write as an operation on host id.
func asHostOperation(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, hostOperation{}, id)
}

// operatesHost reports whether ctx's write is an operation on a host that
// lab (as stored in the write's transaction) names the caller the owner
// of, which the caller may make without owning the lab.
func operatesHost(ctx context.Context, old *lab.State) bool {
	id, _ := ctx.Value(hostOperation{}).(string)
	p := principal(ctx)
	if id == "" || p == nil || p.User == "" || p.Role != auth.Student {
		return false
	}
	h := old.Hosts[id]
	return h != nil && h.Owner == p.User
}

// recordOf is the lab record mayChange judges a write by: old's, or,
// for a lab whose networks and hosts were stored before labs had records
// (and owners), a record with no owner, which only admins may change; nil
// for a lab that does not exist yet.
func recordOf(old *lab.State) *labv1.Lab {
	if old.Lab == nil && (len(old.Networks) > 0 || len(old.Hosts) > 0) {
		return &labv1.Lab{Name: lab.LabName(old.ID)}
	}
	return old.Lab
}

// mayChange checks, inside a write's transaction, that the caller of ctx
// may change lab id as stored there (l; nil when the lab has no record
// yet, which creating it makes theirs): an admin may change any lab, any
// other user only their own.
func mayChange(ctx context.Context, id string, l *labv1.Lab) error {
	p := principal(ctx)
	if p == nil || l == nil || p.Role == auth.Admin {
		return nil
	}
	switch {
	case p.User == "":
		return status.Errorf(codes.PermissionDenied, "%s may not change lab %s: a node acting for itself makes only node-to-node calls", p, id)
	case l.Owner == p.User:
		return nil
	case l.Owner == "":
		return status.Errorf(codes.PermissionDenied, "%s may not change lab %s: the lab has no owner; an admin may hand it to you", p, id)
	default:
		return status.Errorf(codes.PermissionDenied, "%s may not change lab %s: lab %s is owned by %s", p, id, id, l.Owner)
	}
}
