package auth

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DeniedError is a call the policy refuses: PermissionDenied naming the
// principal, the verb and the resource, and why.
type DeniedError struct {
	Principal string
	Role      Role
	Verb      Verb
	Resource  string
	Reason    string
}

func (e *DeniedError) Error() string { return e.GRPCStatus().Message() }

// GRPCStatus makes the error PermissionDenied.
func (e *DeniedError) GRPCStatus() *status.Status {
	who := e.Principal
	if e.Role != "" {
		who += " (" + string(e.Role) + ")"
	}
	return status.Newf(codes.PermissionDenied, "%s may not %s %s: %s", who, e.Verb, e.Resource, e.Reason)
}

// Authorize decides whether p may do v on resource, a resource name
// ("labs/l1", "labs/l1/hosts/h1", "nodes/n1", "users/bob/tokens/ab12")
// or a collection ("labs", "nodes", "users", "users/bob/tokens"). It
// returns nil, or a *DeniedError. The table it implements is in
// docs/security.md.
func Authorize(dir Directory, p *Principal, v Verb, resource string) error {
	if p == nil {
		return status.Error(codes.Unauthenticated, "no credentials")
	}
	deny := func(reason string, args ...any) error {
		return &DeniedError{Principal: p.String(), Role: p.Role, Verb: v, Resource: resource, Reason: fmt.Sprintf(reason, args...)}
	}
	if p.User == "" {
		return deny("a node acting for itself makes only node-to-node calls")
	}
	if p.TokenKind == Invite {
		return deny("an invite token only logs in: run labctl login with it")
	}
	if p.Role == Admin {
		return nil
	}
	read := v == Get || v == List || v == Watch
	seg := strings.Split(resource, "/")
	switch seg[0] {
	case "labs":
		if len(seg) == 1 || seg[1] == "-" && len(seg) <= 2 {
			// The collection: lists and watches are filtered to what p
			// may see (Visible).
			if read || v == Create && p.Role == Student {
				return nil
			}
			return deny("%s", roleCan(p.Role))
		}
		if seg[1] == "-" {
			// labs/-/hosts: every lab's, filtered.
			if read {
				return nil
			}
			return deny("a change names one lab")
		}
		info, exists := dir.Lab(seg[1])
		switch {
		case p.Role == Viewer:
			if read {
				return nil
			}
			return deny("viewers only read")
		case v == Transfer:
			return deny("only admins hand labs to other users")
		case !exists && (v == Create || read):
			// A lab that does not exist yet: creating it makes p its
			// owner; a read finds nothing.
			return nil
		case !exists:
			// Nothing to change or operate; or a lab stored before labs
			// had records and owners, which only admins operate.
			return deny("lab %s has no record: it does not exist, or it is older than lab owners and an admin must hand it to you", seg[1])
		case info.Owner == p.User:
			return nil
		case read && info.Shared:
			return nil
		case hostOperation(v) && len(seg) >= 4 && seg[2] == "hosts" && dir.HostOwner(seg[1], seg[3]) == p.User:
			// A host the lab names p the owner of (a student's hosts in
			// a class lab): p operates it without owning the lab.
			return nil
		case info.Owner == "":
			return deny("the lab has no owner; an admin may hand it to you")
		case info.Shared:
			return deny("lab %s is owned by %s and shared for viewing only", seg[1], info.Owner)
		default:
			return deny("lab %s is owned by %s", seg[1], info.Owner)
		}
	case "nodes":
		if read {
			return nil
		}
		return deny("only admins change nodes")
	case "users":
		if len(seg) >= 2 && seg[1] == p.User {
			if len(seg) == 2 && v == Get {
				return nil // yourself
			}
			if len(seg) >= 3 && seg[2] == "tokens" && v != Transfer && v != Update {
				return nil // your own tokens
			}
		}
		return deny("only admins manage users and other users' tokens")
	}
	return deny("not a resource of this API")
}

// Visible reports whether p may read resource (a name within a lab): what
// List and Watch leave in their answers. Unlike Authorize, which lets a
// get of a lab that does not exist through (the handler then says it is
// not found), a name in a lab that does not exist is visible only to
// admins: a Watch's event may name a lab deleted since, or one made and
// deleted again, and a student must not learn other users' lab names so.
func Visible(dir Directory, p *Principal, resource string) bool {
	if Authorize(dir, p, Get, resource) != nil {
		return false
	}
	if p.Role == Admin {
		return true
	}
	if lab, ok := labOf(resource); ok {
		_, exists := dir.Lab(lab)
		return exists
	}
	return true
}

// hostOperation reports whether v is what a host's owner may do to it.
func hostOperation(v Verb) bool { return v == Get || v == Exec || v == Capture || v == Impair }

func roleCan(r Role) string {
	switch r {
	case Viewer:
		return "viewers only read"
	case Student:
		return "students create labs and change only their own"
	}
	return "no role"
}
