package api

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

const defaultLab = "default"

// topologyLab is the lab a topology names ("default" when it names none).
func topologyLab(t *labv1.Topology) (string, error) {
	if t == nil {
		return "", invalid("topology", "required")
	}
	lab := t.Lab
	if lab == "" {
		lab = defaultLab
	}
	if !validID(lab) {
		return "", invalid("topology.lab", "%q %s", lab, idRule)
	}
	return lab, nil
}

// Apply creates or updates everything the topology names, in one store
// transaction: all of it or nothing.
func (s *Server) Apply(ctx context.Context, req *labv1.ApplyRequest) (*labv1.ApplyResponse, error) {
	t := req.GetTopology()
	lab, err := topologyLab(t)
	if err != nil {
		return nil, err
	}
	var changes []*labv1.Change
	err = s.update(func(tx *store.Tx) error {
		old, err := loadLab(tx, lab)
		if err != nil {
			return err
		}
		next := old.clone()
		if next.lab == nil {
			next.lab = &labv1.Lab{Name: labName(lab), CreateTime: timestamppb.New(s.cfg.Now())}
		}
		if t.Description != "" {
			next.lab.Description = t.Description
		}
		var v violations
		paths := map[string]string{}
		var order []string // resource names in request order
		// claim names the resource at field f of the request, once.
		claim := func(f, kind, collection, given string) (string, string, bool) {
			id, ok := shortID(given, lab, collection)
			if !ok {
				v.add(join(f, "name"), "%q %s", given, idRule)
				return "", "", false
			}
			name := "labs/" + lab + "/" + collection + "/" + id
			if _, dup := paths[name]; dup {
				v.add(join(f, "name"), "%s %q appears twice", kind, id)
				return "", "", false
			}
			paths[name] = f
			order = append(order, name)
			return id, name, true
		}
		for i, n := range t.Networks {
			if id, name, ok := claim(fmt.Sprintf("topology.networks[%d]", i), "network", "networks", n.GetName()); ok {
				next.nets[id] = s.networkSpec(next, old.nets[id], n, name)
			}
		}
		var hostIDs []string
		pl := s.newPlacer()
		for i, h := range t.Hosts {
			if id, name, ok := claim(fmt.Sprintf("topology.hosts[%d]", i), "host", "hosts", h.GetName()); ok {
				hostIDs = append(hostIDs, id)
				next.hosts[id] = s.hostSpec(old.hosts[id], h, name, pl)
			}
		}
		if err := v.err(); err != nil {
			return err
		}
		normalize(next, old, hostIDs)
		if err := validateLab(next, pathsOf(paths), order).err(); err != nil {
			return err
		}
		changes = append(changes, &labv1.Change{Name: labName(lab), Action: action(msg(old.lab), next.lab)})
		for _, name := range order {
			changes = append(changes, &labv1.Change{Name: name, Action: actionOf(old, next, name)})
		}
		if req.ValidateOnly {
			return errAbort
		}
		return write(tx, old, next)
	})
	if err != nil {
		return nil, err
	}
	return &labv1.ApplyResponse{Changes: changes}, nil
}

func pathsOf(paths map[string]string) fieldOf {
	return func(name string) string {
		if p, ok := paths[name]; ok {
			return p
		}
		return name
	}
}

func actionOf(old, next *labState, name string) labv1.ChangeAction {
	id := lastSegment(name)
	if _, _, ok := parseChild(name, "networks"); ok {
		return action(msg(old.nets[id]), next.nets[id])
	}
	return action(msg(old.hosts[id]), next.hosts[id])
}

// networkSpec is the stored form of a requested network: the resource name,
// and the VNI kept from before or assigned.
func (s *Server) networkSpec(st *labState, before, req *labv1.Network, name string) *labv1.Network {
	n := proto.Clone(req).(*labv1.Network)
	n.Name = name
	if before != nil && before.Vni != 0 {
		n.Vni = before.Vni
	} else {
		n.Vni = vniFor(name, s.usedVNIs(st))
	}
	return n
}

// usedVNIs lists the VNIs of every lab (VNIs are global: they pick the
// network on the overlay).
func (s *Server) usedVNIs(st *labState) map[uint32]bool {
	used := map[uint32]bool{}
	for _, rec := range s.cfg.Store.List("labs/") {
		if _, _, ok := parseChild(rec.Key, "networks"); !ok {
			continue
		}
		n := &labv1.Network{}
		if proto.Unmarshal(rec.Value, n) == nil {
			used[n.Vni] = true
		}
	}
	for _, n := range st.nets {
		used[n.Vni] = true
	}
	return used
}

// hostSpec is the stored form of a requested host: the resource name, its
// placement (kept from before, or this node) and impairments in canonical
// form (canonImpair).
func (s *Server) hostSpec(before, req *labv1.Host, name string, pl *placer) *labv1.Host {
	h := proto.Clone(req).(*labv1.Host)
	h.Name = name
	if h.Node == "" {
		if before != nil && before.Node != "" {
			h.Node = before.Node
		} else {
			h.Node = pl.place()
		}
	}
	for i, ifc := range h.Interfaces {
		if ifc == nil {
			h.Interfaces[i] = &labv1.Interface{}
			continue
		}
		ifc.Impair = canonImpair(ifc.Impair)
	}
	for i, r := range h.Routes {
		if r == nil {
			h.Routes[i] = &labv1.Route{}
		}
	}
	return h
}

// DeleteTopology deletes the hosts and networks the topology names (hosts
// first), and the lab when nothing is left in it, in one transaction.
func (s *Server) DeleteTopology(ctx context.Context, req *labv1.DeleteTopologyRequest) (*labv1.DeleteTopologyResponse, error) {
	t := req.GetTopology()
	lab, err := topologyLab(t)
	if err != nil {
		return nil, err
	}
	var changes []*labv1.Change
	err = s.update(func(tx *store.Tx) error {
		old, err := loadLab(tx, lab)
		if err != nil {
			return err
		}
		next := old.clone()
		var v violations
		for i, h := range t.Hosts {
			id, ok := shortID(h.GetName(), lab, "hosts")
			if !ok {
				v.add(fmt.Sprintf("topology.hosts[%d].name", i), "%q %s", h.GetName(), idRule)
				continue
			}
			a := labv1.ChangeAction_CHANGE_ACTION_NOT_FOUND
			if next.hosts[id] != nil {
				a = labv1.ChangeAction_CHANGE_ACTION_DELETED
				delete(next.hosts, id)
			}
			changes = append(changes, &labv1.Change{Name: hostName(lab, id), Action: a})
		}
		for i, n := range t.Networks {
			f := fmt.Sprintf("topology.networks[%d].name", i)
			id, ok := shortID(n.GetName(), lab, "networks")
			if !ok {
				v.add(f, "%q %s", n.GetName(), idRule)
				continue
			}
			a := labv1.ChangeAction_CHANGE_ACTION_NOT_FOUND
			if next.nets[id] != nil {
				if users := usersOf(next, id); len(users) > 0 {
					v.add(f, "network %s is still used by %s", id, users)
					continue
				}
				a = labv1.ChangeAction_CHANGE_ACTION_DELETED
				delete(next.nets, id)
			}
			changes = append(changes, &labv1.Change{Name: networkName(lab, id), Action: a})
		}
		if err := v.err(); err != nil {
			return err
		}
		if next.lab != nil && len(next.nets) == 0 && len(next.hosts) == 0 {
			next.lab = nil
			changes = append(changes, &labv1.Change{Name: labName(lab), Action: labv1.ChangeAction_CHANGE_ACTION_DELETED})
		}
		if req.ValidateOnly {
			return errAbort
		}
		return write(tx, old, next)
	})
	if err != nil {
		return nil, err
	}
	return &labv1.DeleteTopologyResponse{Changes: changes}, nil
}

// usersOf names the hosts with an interface on network id, as "h1, r1".
func usersOf(st *labState, id string) string {
	var users []string
	for _, hid := range sortedKeys(st.hosts) {
		for _, ifc := range st.hosts[hid].Interfaces {
			if ifc.Network == id {
				users = append(users, hid)
				break
			}
		}
	}
	if len(users) == 0 {
		return ""
	}
	s := users[0]
	for _, u := range users[1:] {
		s += ", " + u
	}
	return "host(s) " + s
}

// placer puts hosts that name no node on the least-loaded live node
// (DESIGN.md: placement), counting the hosts it places as it goes.
type placer struct {
	counts map[string]int
	alive  []string
}

func (s *Server) newPlacer() *placer {
	p := &placer{counts: map[string]int{}}
	for _, n := range s.cfg.Members.Nodes() {
		if n.State == labv1.NodeState_NODE_STATE_ALIVE {
			name := strings.TrimPrefix(n.Name, "nodes/")
			p.alive = append(p.alive, name)
			p.counts[name] = int(n.HostCount)
		}
	}
	if len(p.alive) == 0 {
		p.alive = []string{s.cfg.Node}
	}
	sort.Strings(p.alive)
	return p
}

// place picks a node, the first by name among the least loaded.
func (p *placer) place() string {
	best := p.alive[0]
	for _, n := range p.alive[1:] {
		if p.counts[n] < p.counts[best] {
			best = n
		}
	}
	p.counts[best]++
	return best
}
