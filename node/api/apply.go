package api

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

const defaultLab = "default"

// topologyLab is the lab a topology names ("default" when it names none).
func topologyLab(t *labv1.Topology) (string, error) {
	if t == nil {
		return "", invalid("topology", "required")
	}
	id := t.Lab
	if id == "" {
		id = defaultLab
	}
	if !lab.ValidID(id) {
		return "", invalid("topology.lab", "%q %s", id, lab.IDRule)
	}
	return id, nil
}

// Apply creates or updates everything the topology names, in one store
// transaction: all of it or nothing. A new lab is the caller's; an
// existing one keeps its owner, and must be the caller's to change
// (mayChange). The lab is shared as the topology says.
func (s *Server) Apply(ctx context.Context, req *labv1.ApplyRequest) (*labv1.ApplyResponse, error) {
	t := req.GetTopology()
	labID, err := topologyLab(t)
	if err != nil {
		return nil, err
	}
	var changes []*labv1.Change
	err = s.update(ctx, func(tx *store.Tx) error {
		old, err := lab.Load(tx, labID)
		if err != nil {
			return err
		}
		if err := mayChange(ctx, labID, recordOf(old)); err != nil {
			return err
		}
		next := old.Clone()
		if next.Lab == nil {
			next.Lab = &labv1.Lab{Name: lab.LabName(labID), CreateTime: timestamppb.New(s.cfg.Now()), Owner: ownerOf(ctx)}
		}
		if t.Description != "" {
			next.Lab.Description = t.Description
		}
		next.Lab.Shared = t.Shared
		var v violations
		paths := map[string]string{}
		var order []string // resource names in request order
		// claim names the resource at field f of the request, once.
		claim := func(f, kind string, c lab.Collection, given string) (string, string, bool) {
			id, ok := lab.ShortID(given, labID, c)
			if !ok {
				v.add(join(f, "name"), "%q %s", given, lab.IDRule)
				return "", "", false
			}
			name := lab.ChildName(labID, c, id)
			if _, dup := paths[name]; dup {
				v.add(join(f, "name"), "%s %q appears twice", kind, id)
				return "", "", false
			}
			paths[name] = f
			order = append(order, name)
			return id, name, true
		}
		var vnis lab.VNIs
		for i, n := range t.Networks {
			if id, name, ok := claim(fmt.Sprintf("topology.networks[%d]", i), "network", lab.Networks, n.GetName()); ok {
				if vnis == nil {
					vnis = s.usedVNIs(next)
				}
				next.Networks[id] = networkSpec(old.Networks[id], n, name, vnis)
			}
		}
		var hostIDs []string
		pl := lab.LazyPlacer(s.newPlacer) // asks membership only when a host needs placing
		for i, h := range t.Hosts {
			if id, name, ok := claim(fmt.Sprintf("topology.hosts[%d]", i), "host", lab.Hosts, h.GetName()); ok {
				hostIDs = append(hostIDs, id)
				next.Hosts[id] = hostSpec(old.Hosts[id], h, name, pl)
			}
		}
		if err := v.err(); err != nil {
			return err
		}
		lab.Normalize(next, old, hostIDs)
		if err := lab.Validate(next, pathsOf(paths), order).Err(); err != nil {
			return modelErr(err)
		}
		changes = append(changes, &labv1.Change{Name: lab.LabName(labID), Action: action(old.Lab, next.Lab)})
		for _, name := range order {
			changes = append(changes, &labv1.Change{Name: name, Action: actionOf(old, next, name)})
		}
		if req.ValidateOnly {
			return errAbort
		}
		return lab.Write(tx, old, next)
	})
	if err != nil {
		return nil, err
	}
	return &labv1.ApplyResponse{Changes: changes}, nil
}

func pathsOf(paths map[string]string) lab.FieldOf {
	return func(name string) string {
		if p, ok := paths[name]; ok {
			return p
		}
		return name
	}
}

// action reports what writing after over before does.
func action[M proto.Message](before, after M) labv1.ChangeAction {
	switch {
	case !before.ProtoReflect().IsValid():
		return labv1.ChangeAction_CHANGE_ACTION_CREATED
	case proto.Equal(before, after):
		return labv1.ChangeAction_CHANGE_ACTION_UNCHANGED
	default:
		return labv1.ChangeAction_CHANGE_ACTION_CONFIGURED
	}
}

func actionOf(old, next *lab.State, name string) labv1.ChangeAction {
	if _, id, ok := lab.ParseNetworkName(name); ok {
		return action(old.Networks[id], next.Networks[id])
	}
	_, id, _ := lab.ParseHostName(name)
	return action(old.Hosts[id], next.Hosts[id])
}

// networkSpec is the stored form of a requested network: the resource name,
// and the VNI kept from before or assigned.
func networkSpec(before, req *labv1.Network, name string, vnis lab.VNIs) *labv1.Network {
	n := proto.CloneOf(req)
	n.Name = name
	if before != nil && before.Vni != 0 {
		n.Vni = before.Vni
	} else {
		n.Vni = vnis.Assign(name)
	}
	return n
}

// usedVNIs lists the VNIs of every lab's stored networks and of st's.
func (s *Server) usedVNIs(st *lab.State) lab.VNIs {
	used := lab.UsedVNIs(s.cfg.Store)
	for _, n := range st.Networks {
		used[n.Vni] = true
	}
	return used
}

// hostSpec is the stored form of a requested host: the resource name, its
// placement and impairments in canonical form (lab.CanonImpairment).
//
// Placement: a host whose request names a node is pinned there (its home);
// one that names none keeps the node it runs on now (where failover may
// have moved it) and its home, or is placed by pl (its home from then on).
// Runtime changes survive a re-apply: an interface whose request sets no
// impairment keeps the one stored (set by `impair` since); one that sets
// an impairment gets it.
func hostSpec(before, req *labv1.Host, name string, pl *lab.Placer) *labv1.Host {
	h := proto.CloneOf(req)
	h.Name = name
	h.HomeNode, h.Pinned = "", false
	switch {
	case h.Node != "":
		h.HomeNode, h.Pinned = h.Node, true
	case before != nil && before.Node != "":
		h.Node = before.Node
		h.HomeNode = before.HomeNode
		if h.HomeNode == "" {
			h.HomeNode = before.Node // stored before hosts had a home
		}
	default:
		h.Node = pl.Place()
		h.HomeNode = h.Node
	}
	for i, ifc := range h.Interfaces {
		if ifc == nil {
			ifc = &labv1.Interface{}
			h.Interfaces[i] = ifc
		}
		if ifc.Impair == nil {
			if prev := sameInterface(before, ifc, i); prev != nil {
				ifc.Impair = proto.CloneOf(prev.Impair)
			}
		}
		ifc.Impair = lab.CanonImpairment(ifc.Impair)
	}
	for i, r := range h.Routes {
		if r == nil {
			h.Routes[i] = &labv1.Route{}
		}
	}
	return h
}

// sameInterface is the stored interface that the requested interface ifc
// (at index i) is: the one with its name (eth{i} when it names none) on the
// same network; nil when there is none.
func sameInterface(before *labv1.Host, ifc *labv1.Interface, i int) *labv1.Interface {
	name := ifc.Name
	if name == "" {
		name = fmt.Sprintf("eth%d", i)
	}
	for _, prev := range before.GetInterfaces() {
		if prev.GetName() == name && prev.GetNetwork() == ifc.Network {
			return prev
		}
	}
	return nil
}

// DeleteTopology deletes the hosts and networks the topology names (hosts
// first), and the lab when nothing is left in it, in one transaction.
func (s *Server) DeleteTopology(ctx context.Context, req *labv1.DeleteTopologyRequest) (*labv1.DeleteTopologyResponse, error) {
	t := req.GetTopology()
	labID, err := topologyLab(t)
	if err != nil {
		return nil, err
	}
	var changes []*labv1.Change
	err = s.update(ctx, func(tx *store.Tx) error {
		old, err := lab.Load(tx, labID)
		if err != nil {
			return err
		}
		if err := mayChange(ctx, labID, recordOf(old)); err != nil {
			return err
		}
		next := old.Clone()
		var v violations
		for i, h := range t.Hosts {
			id, ok := lab.ShortID(h.GetName(), labID, lab.Hosts)
			if !ok {
				v.add(fmt.Sprintf("topology.hosts[%d].name", i), "%q %s", h.GetName(), lab.IDRule)
				continue
			}
			a := labv1.ChangeAction_CHANGE_ACTION_NOT_FOUND
			if next.Hosts[id] != nil {
				a = labv1.ChangeAction_CHANGE_ACTION_DELETED
				delete(next.Hosts, id)
			}
			changes = append(changes, &labv1.Change{Name: lab.HostName(labID, id), Action: a})
		}
		for i, n := range t.Networks {
			f := fmt.Sprintf("topology.networks[%d].name", i)
			id, ok := lab.ShortID(n.GetName(), labID, lab.Networks)
			if !ok {
				v.add(f, "%q %s", n.GetName(), lab.IDRule)
				continue
			}
			a := labv1.ChangeAction_CHANGE_ACTION_NOT_FOUND
			if next.Networks[id] != nil {
				if users := usersOf(next, id); len(users) > 0 {
					v.add(f, "network %s is still used by %s", id, users)
					continue
				}
				a = labv1.ChangeAction_CHANGE_ACTION_DELETED
				delete(next.Networks, id)
			}
			changes = append(changes, &labv1.Change{Name: lab.NetworkName(labID, id), Action: a})
		}
		if err := v.err(); err != nil {
			return err
		}
		if next.Lab != nil && len(next.Networks) == 0 && len(next.Hosts) == 0 {
			next.Lab = nil
			changes = append(changes, &labv1.Change{Name: lab.LabName(labID), Action: labv1.ChangeAction_CHANGE_ACTION_DELETED})
		}
		if req.ValidateOnly {
			return errAbort
		}
		return lab.Write(tx, old, next)
	})
	if err != nil {
		return nil, err
	}
	return &labv1.DeleteTopologyResponse{Changes: changes}, nil
}

// usersOf names the hosts with an interface on network id, as
// "host(s) h1, r1"; "" when none.
func usersOf(st *lab.State, id string) string {
	users := st.UsersOf(id)
	if len(users) == 0 {
		return ""
	}
	return "host(s) " + strings.Join(users, ", ")
}

// newPlacer places hosts that name no node on the live nodes, counting the
// hosts each holds (this node alone when membership reports none alive).
func (s *Server) newPlacer() *lab.Placer {
	var alive []string
	load := map[string]int{}
	for _, n := range s.cfg.Members.Nodes() {
		if n.State == labv1.NodeState_NODE_STATE_ALIVE {
			id := lab.NodeID(n.Name)
			alive = append(alive, id)
			load[id] = int(n.HostCount)
		}
	}
	if len(alive) == 0 {
		alive = []string{s.cfg.Node}
	}
	return lab.NewPlacer(alive, load)
}
