package auth

import (
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Lists and watches answer only with what the caller may see (Visible):
// the handlers list everything, and the interceptor drops the rest. A
// page may so come back shorter than its size, or empty with a next page
// token; clients follow the token until it is empty, as AIP-158 asks.

// filterList drops the items of a List response that p may not see.
func (i *Interceptor) filterList(p *Principal, resp any) any {
	if p.Role == Admin && p.TokenKind != Invite {
		return resp
	}
	v := labVisibility{dir: i.dir, p: p}
	switch r := resp.(type) {
	case *labv1.ListLabsResponse:
		r.Labs = keep(r.Labs, func(l *labv1.Lab) bool { return v.visible(l.GetName()) })
	case *labv1.ListNetworksResponse:
		r.Networks = keep(r.Networks, func(n *labv1.Network) bool { return v.visible(n.GetName()) })
	case *labv1.ListHostsResponse:
		r.Hosts = keep(r.Hosts, func(h *labv1.Host) bool { return v.visible(h.GetName()) })
	}
	return resp
}

// keep is the items for which ok holds, in a new slice: the handler's
// may share its array with something else.
func keep[T any](items []T, ok func(T) bool) []T {
	out := make([]T, 0, len(items))
	for _, it := range items {
		if ok(it) {
			out = append(out, it)
		}
	}
	return out
}

// labVisibility is Visible for the names of one response, asked once per
// lab: whether p may see a name in a lab depends only on the lab.
type labVisibility struct {
	dir  Directory
	p    *Principal
	labs map[string]bool
}

func (v *labVisibility) visible(name string) bool {
	lab, ok := labOf(name)
	if !ok {
		return Visible(v.dir, v.p, name)
	}
	if vis, ok := v.labs[lab]; ok {
		return vis
	}
	if v.labs == nil {
		v.labs = map[string]bool{}
	}
	vis := Visible(v.dir, v.p, join(labsColl, lab))
	v.labs[lab] = vis
	return vis
}

// watchVisible reports whether a Watch event m goes to p. An event goes
// when p may see its name now; a DELETED event also when the stream
// showed p the resource (its lab is gone, so Visible cannot tell). When p
// may no longer see a resource the stream showed (the lab was handed to
// another user, or stopped being shared), the event goes as DELETED
// without the resource (a new message: the server may send m to other
// watchers too), so the client forgets it. Events without a name (SYNCED)
// always go. out is what to send, nil for nothing.
func (i *Interceptor) watchVisible(p *Principal, seen map[string]bool, m any) (out any) {
	ev, ok := m.(*labv1.WatchResponse)
	if !ok || ev.GetName() == "" {
		return m
	}
	name := ev.GetName()
	if ev.GetType() == labv1.WatchEventType_WATCH_EVENT_TYPE_DELETED {
		if seen[name] || Visible(i.dir, p, name) {
			delete(seen, name)
			return m
		}
		return nil
	}
	if Visible(i.dir, p, name) {
		seen[name] = true
		return m
	}
	if seen[name] {
		delete(seen, name)
		return &labv1.WatchResponse{Revision: ev.GetRevision(), Type: labv1.WatchEventType_WATCH_EVENT_TYPE_DELETED, Name: name}
	}
	return nil
}
