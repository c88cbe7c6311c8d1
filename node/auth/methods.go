package auth

import (
	"slices"
	"strings"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Every RPC the API serves has a rule here: who may call it at all
// (access) and, for the calls the policy decides, the verb and resource
// names each request message asks for. The interceptor refuses a method
// without a rule, and methods_test.go walks the proto descriptors so that a
// new RPC cannot be served before it has one.

// access is who may call a method before the policy is asked.
type access int

const (
	// byPolicy: a user's session; Authorize decides on the checks.
	byPolicy access = iota
	// public: no principal needed (health, enrolment).
	public
	// anyPrincipal: any authenticated principal, invite tokens and nodes
	// included (WhoAmI).
	anyPrincipal
	// anySession: any principal but an invite token (CanI, reflection).
	anySession
	// inviteOnly: a user holding an invite token (Login).
	inviteOnly
	// nodeOnly: a labnet node acting for itself (Follow).
	nodeOnly
)

// perm is one thing a request asks to do.
type perm struct {
	Verb     Verb
	Resource string
}

// rule is a method's rule. checks maps one request message (for a stream,
// each message the client sends) to what it asks; a message that names
// nothing (a socket stream's data) asks nothing.
type rule struct {
	access access
	checks func(dir Directory, msg any) []perm
}

// on is a rule for the policy: verb v on the resource res names in a
// request of type T. A message of another type asks for "?", which the
// policy refuses.
func on[T any](v Verb, res func(T) string) rule {
	return onFunc(func(_ Directory, m T) []perm { return []perm{{v, res(m)}} })
}

// onFunc is a rule for the policy whose checks need the Directory or
// name several resources.
func onFunc[T any](f func(Directory, T) []perm) rule {
	return rule{access: byPolicy, checks: func(dir Directory, msg any) []perm {
		m, ok := msg.(T)
		if !ok {
			return []perm{{Get, "?"}}
		}
		return f(dir, m)
	}}
}

// fixed is a rule for the policy on a resource every request names alike.
func fixed(v Verb, resource string) rule {
	return rule{access: byPolicy, checks: func(Directory, any) []perm { return []perm{{v, resource}} }}
}

const (
	healthService = "/grpc.health.v1.Health/"
	labSvc        = "/lab.v1.LabService/"
	nodeSvc       = "/lab.v1.NodeService/"
	liveSvc       = "/lab.v1.LiveService/"
	socketSvc     = "/lab.v1.SocketService/"
	captureSvc    = "/lab.v1.CaptureService/"
	controlSvc    = "/lab.v1.ControlService/"
	authSvc       = "/lab.v1.AuthService/"
)

// methods is the rule of every method by its full name.
var methods = map[string]rule{
	// LabService.
	labSvc + "Apply": onFunc(func(dir Directory, r *labv1.ApplyRequest) []perm {
		return []perm{applyCheck(dir, r.GetTopology())}
	}),
	labSvc + "DeleteTopology": on(Delete, func(r *labv1.DeleteTopologyRequest) string { return topologyLab(r.GetTopology()) }),
	labSvc + "GetLab":         on(Get, (*labv1.GetLabRequest).GetName),
	labSvc + "ListLabs":       fixed(List, labsColl),
	labSvc + "CreateLab":      on(Create, func(r *labv1.CreateLabRequest) string { return join(labsColl, r.GetLabId()) }),
	labSvc + "UpdateLab": onFunc(func(_ Directory, r *labv1.UpdateLabRequest) []perm {
		return []perm{{updateLabVerb(r), r.GetLab().GetName()}}
	}),
	labSvc + "DeleteLab":     on(Delete, (*labv1.DeleteLabRequest).GetName),
	labSvc + "GetNetwork":    on(Get, (*labv1.GetNetworkRequest).GetName),
	labSvc + "ListNetworks":  on(List, (*labv1.ListNetworksRequest).GetParent),
	labSvc + "CreateNetwork": on(Create, func(r *labv1.CreateNetworkRequest) string { return join(r.GetParent(), networksColl) }),
	labSvc + "UpdateNetwork": on(Update, func(r *labv1.UpdateNetworkRequest) string { return r.GetNetwork().GetName() }),
	labSvc + "DeleteNetwork": on(Delete, (*labv1.DeleteNetworkRequest).GetName),
	labSvc + "GetHost":       on(Get, (*labv1.GetHostRequest).GetName),
	labSvc + "ListHosts":     on(List, (*labv1.ListHostsRequest).GetParent),
	labSvc + "CreateHost":    on(Create, func(r *labv1.CreateHostRequest) string { return join(r.GetParent(), hostsColl) }),
	labSvc + "UpdateHost":    on(Update, func(r *labv1.UpdateHostRequest) string { return r.GetHost().GetName() }),
	labSvc + "DeleteHost":    on(Delete, (*labv1.DeleteHostRequest).GetName),
	labSvc + "SetImpairment": on(Impair, (*labv1.SetImpairmentRequest).GetHost),
	labSvc + "Watch": on(Watch, func(r *labv1.WatchRequest) string {
		if r.GetParent() == "" {
			return labsColl
		}
		return r.GetParent()
	}),

	// NodeService: every role reads nodes; only admins change them.
	nodeSvc + "GetNode":     on(Get, (*labv1.GetNodeRequest).GetName),
	nodeSvc + "ListNodes":   fixed(List, "nodes"),
	nodeSvc + "WatchNodes":  fixed(Watch, "nodes"),
	nodeSvc + "PromoteNode": on(Update, (*labv1.PromoteNodeRequest).GetName),
	nodeSvc + "DemoteNode":  on(Update, (*labv1.DemoteNodeRequest).GetName),
	nodeSvc + "CreateNodeInvite": on(Create, func(r *labv1.CreateNodeInviteRequest) string {
		return join("nodes", r.GetNodeId())
	}),
	nodeSvc + "RemoveNode": on(Delete, (*labv1.RemoveNodeRequest).GetName),

	// LiveService.
	liveSvc + "Ping":            on(Exec, (*labv1.PingRequest).GetHost),
	liveSvc + "Traceroute":      on(Exec, (*labv1.TracerouteRequest).GetHost),
	liveSvc + "GetHostStatus":   on(Get, (*labv1.GetHostStatusRequest).GetName),
	liveSvc + "ListConnections": on(Get, (*labv1.ListConnectionsRequest).GetHost),
	liveSvc + "Fetch":           on(Exec, (*labv1.FetchRequest).GetHost),
	liveSvc + "Bench":           on(Exec, (*labv1.BenchRequest).GetHost),

	// SocketService: every message that names a host is checked, not
	// only the first (the interceptor wraps RecvMsg).
	socketSvc + "Dial": onFunc(func(_ Directory, r *labv1.DialRequest) []perm {
		return hostCheck(r.GetOpen() != nil, r.GetOpen().GetHost())
	}),
	socketSvc + "Expose": on(Exec, (*labv1.ExposeRequest).GetHost),
	socketSvc + "Accept": onFunc(func(_ Directory, r *labv1.AcceptRequest) []perm {
		return hostCheck(r.GetOpen() != nil, r.GetOpen().GetHost())
	}),
	socketSvc + "Datagrams": onFunc(func(_ Directory, r *labv1.DatagramsRequest) []perm {
		return hostCheck(r.GetOpen() != nil, r.GetOpen().GetHost())
	}),

	// CaptureService.
	captureSvc + "Capture": onFunc(func(_ Directory, r *labv1.CaptureRequest) []perm { return captureChecks(r) }),

	// ControlService.
	controlSvc + "Follow":         {access: nodeOnly},
	controlSvc + "Enroll":         {access: public},
	controlSvc + "GossipKeys":     {access: nodeOnly},
	controlSvc + "RecordIdentity": {access: nodeOnly},

	// AuthService.
	authSvc + "WhoAmI":     {access: anyPrincipal},
	authSvc + "CanI":       {access: anySession},
	authSvc + "Login":      {access: inviteOnly},
	authSvc + "CreateUser": on(Create, func(r *labv1.CreateUserRequest) string { return join(usersColl, r.GetUserId()) }),
	authSvc + "GetUser":    on(Get, (*labv1.GetUserRequest).GetName),
	authSvc + "ListUsers":  fixed(List, usersColl),
	authSvc + "DeleteUser": on(Delete, (*labv1.DeleteUserRequest).GetName),
	authSvc + "CreateToken": on(Create, func(r *labv1.CreateTokenRequest) string {
		return join(r.GetParent(), tokensColl)
	}),
	authSvc + "ListTokens": on(List, func(r *labv1.ListTokensRequest) string { return join(r.GetParent(), tokensColl) }),
	authSvc + "RevokeToken": onFunc(func(dir Directory, r *labv1.RevokeTokenRequest) []perm {
		return []perm{{Delete, tokenName(dir, r.GetName())}}
	}),

	// gRPC's own services.
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      {access: anySession},
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {access: anySession},
}

// ruleOf is the rule of a method; ok is false for a method without one.
// Health is public as a whole service, whatever methods its version has.
func ruleOf(fullMethod string) (r rule, ok bool) {
	if strings.HasPrefix(fullMethod, healthService) {
		return rule{access: public}, true
	}
	r, ok = methods[fullMethod]
	return r, ok
}

// defaultLab is the lab a topology names when it names none (node/api
// and format/topology use the same).
const defaultLab = "default"

// topologyLab is the resource name of the lab a topology is for.
func topologyLab(t *labv1.Topology) string {
	if t.GetLab() == "" {
		return join(labsColl, defaultLab)
	}
	return join(labsColl, t.GetLab())
}

// applyCheck is Apply's check: create a lab that does not exist, else
// update it. node/api checks again inside its write transaction, so a lab
// created by another user in between is not taken over.
func applyCheck(dir Directory, t *labv1.Topology) perm {
	name := topologyLab(t)
	id := defaultLab
	if t.GetLab() != "" {
		id = t.GetLab()
	}
	if _, exists := dir.Lab(id); exists {
		return perm{Update, name}
	}
	return perm{Create, name}
}

// updateLabVerb is transfer when the update mask names "owner", else
// update: an empty mask (a full replacement, AIP-134) leaves the owner
// as it is (node/api's UpdateLab).
func updateLabVerb(r *labv1.UpdateLabRequest) Verb {
	if slices.Contains(r.GetUpdateMask().GetPaths(), "owner") {
		return Transfer
	}
	return Update
}

// hostCheck is exec on host when a socket stream's message opens (names a
// host); nothing for its data.
func hostCheck(opens bool, host string) []perm {
	if !opens {
		return nil
	}
	return []perm{{Exec, host}}
}

// captureChecks is capture on every host ("HOST", "HOST:IFACE") and
// network ("net/NETWORK") a capture names, in its lab; on the lab itself
// when it names none (the handler refuses that).
func captureChecks(r *labv1.CaptureRequest) []perm {
	if len(r.GetTargets()) == 0 {
		return []perm{{Capture, r.GetLab()}}
	}
	out := make([]perm, 0, len(r.GetTargets()))
	for _, t := range r.GetTargets() {
		if n, ok := strings.CutPrefix(t, "net/"); ok {
			out = append(out, perm{Capture, join(r.GetLab(), networksColl, n)})
			continue
		}
		host, _, _ := strings.Cut(t, ":")
		out = append(out, perm{Capture, join(r.GetLab(), hostsColl, host)})
	}
	return out
}

// tokenName is the resource name of the token that name
// ("users/{user}/tokens/{id}") revokes, with the user the token really
// belongs to: a user may revoke their own tokens, and naming another's
// token under their own name must not pass as their own.
func tokenName(dir Directory, name string) string {
	seg := strings.Split(name, "/")
	if len(seg) != 4 || seg[0] != usersColl || seg[2] != tokensColl {
		return name
	}
	if t, ok := dir.Token(seg[3]); ok && t.User != seg[1] {
		return join(usersColl, t.User, tokensColl, seg[3])
	}
	return name
}
