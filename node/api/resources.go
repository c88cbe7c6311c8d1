package api

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// change edits one lab in a store transaction: fn edits next (a copy of
// old) and returns the request's field path of each resource it wrote and
// the hosts to normalize; the result is validated as a whole and written.
// The caller must be allowed to change the lab as it is stored
// (mayChange).
func (s *Server) change(ctx context.Context, labID string, fn func(old, next *lab.State) (map[string]string, []string, error)) (*lab.State, error) {
	return s.changeTx(ctx, labID, func(_ *store.Tx, old, next *lab.State) (map[string]string, []string, error) {
		return fn(old, next)
	})
}

// changeTx is change whose fn also reads the transaction.
func (s *Server) changeTx(ctx context.Context, labID string, fn func(tx *store.Tx, old, next *lab.State) (map[string]string, []string, error)) (*lab.State, error) {
	var result *lab.State
	err := s.update(ctx, func(tx *store.Tx) error {
		old, err := lab.Load(tx, labID)
		if err != nil {
			return err
		}
		if err := mayChange(ctx, labID, recordOf(old)); err != nil && !operatesHost(ctx, old) {
			return err
		}
		next := old.Clone()
		paths, hostIDs, err := fn(tx, old, next)
		if err != nil {
			return err
		}
		lab.Normalize(next, old, hostIDs)
		var named []string
		for name := range paths {
			named = append(named, name)
		}
		if err := lab.Validate(next, pathsOf(paths), named).Err(); err != nil {
			return modelErr(err)
		}
		result = next
		return lab.Write(tx, old, next)
	})
	return result, err
}

// read loads a lab for a read-only call.
func (s *Server) read(labID string) (*lab.State, error) {
	st, err := lab.Load(s.cfg.Store, labID)
	if err != nil {
		return nil, storeErr(err)
	}
	return st, nil
}

// storeErr is a record the model could not read: an internal error.
func storeErr(err error) error { return status.Errorf(codes.Internal, "store: %v", err) }

func (s *Server) withCounts(st *lab.State) *labv1.Lab {
	l := proto.CloneOf(st.Lab)
	l.NetworkCount = int32(len(st.Networks))
	l.HostCount = int32(len(st.Hosts))
	return l
}

// --- labs ---

func (s *Server) GetLab(ctx context.Context, req *labv1.GetLabRequest) (*labv1.GetLabResponse, error) {
	labID, ok := lab.ParseLabName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a lab name (labs/{lab})", req.Name)
	}
	st, err := s.read(labID)
	if err != nil {
		return nil, err
	}
	if st.Lab == nil {
		return nil, notFound("lab %q not found", labID)
	}
	return &labv1.GetLabResponse{Lab: s.withCounts(st)}, nil
}

func (s *Server) ListLabs(ctx context.Context, req *labv1.ListLabsRequest) (*labv1.ListLabsResponse, error) {
	all, err := lab.LoadAll(s.cfg.Store)
	if err != nil {
		return nil, storeErr(err)
	}
	var labs []*labv1.Lab
	for _, st := range all {
		if st.Lab != nil {
			labs = append(labs, s.withCounts(st))
		}
	}
	page, next, err := paginate(labs, req.PageSize, req.PageToken, (*labv1.Lab).GetName)
	if err != nil {
		return nil, err
	}
	return &labv1.ListLabsResponse{Labs: page, NextPageToken: next}, nil
}

func (s *Server) CreateLab(ctx context.Context, req *labv1.CreateLabRequest) (*labv1.CreateLabResponse, error) {
	if !lab.ValidID(req.LabId) {
		return nil, invalid("lab_id", "%q %s", req.LabId, lab.IDRule)
	}
	st, err := s.change(ctx, req.LabId, func(old, next *lab.State) (map[string]string, []string, error) {
		if old.Lab != nil {
			return nil, nil, status.Errorf(codes.AlreadyExists, "lab %q already exists", req.LabId)
		}
		next.Lab = &labv1.Lab{
			Name: lab.LabName(req.LabId), Description: req.GetLab().GetDescription(), Shared: req.GetLab().GetShared(),
			CreateTime: timestamppb.New(s.cfg.Now()), Owner: ownerOf(ctx),
		}
		return nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.CreateLabResponse{Lab: s.withCounts(st)}, nil
}

func (s *Server) UpdateLab(ctx context.Context, req *labv1.UpdateLabRequest) (*labv1.UpdateLabResponse, error) {
	labID, ok := lab.ParseLabName(req.GetLab().GetName())
	if !ok {
		return nil, invalid("lab.name", "%q is not a lab name (labs/{lab})", req.GetLab().GetName())
	}
	if err := checkMask(req.UpdateMask, "description", "shared", "owner"); err != nil {
		return nil, err
	}
	// An empty mask replaces what the owner may change; the owner changes
	// only when the mask names it (a transfer, admins only).
	paths := maskPaths(req.UpdateMask, "description", "shared")
	st, err := s.changeTx(ctx, labID, func(tx *store.Tx, old, next *lab.State) (map[string]string, []string, error) {
		if old.Lab == nil {
			return nil, nil, notFound("lab %q not found", labID)
		}
		for _, p := range paths {
			switch p {
			case "description":
				next.Lab.Description = req.Lab.Description
			case "shared":
				next.Lab.Shared = req.Lab.Shared
			case "owner":
				if _, ok := lab.GetUser(tx, req.Lab.Owner); !ok {
					return nil, nil, invalid("lab.owner", "%q is not a user (a user id such as alice: labctl user list)", req.Lab.Owner)
				}
				next.Lab.Owner = req.Lab.Owner
			}
		}
		return nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.UpdateLabResponse{Lab: s.withCounts(st)}, nil
}

func (s *Server) DeleteLab(ctx context.Context, req *labv1.DeleteLabRequest) (*labv1.DeleteLabResponse, error) {
	labID, ok := lab.ParseLabName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a lab name (labs/{lab})", req.Name)
	}
	_, err := s.change(ctx, labID, func(old, next *lab.State) (map[string]string, []string, error) {
		if old.Lab == nil && len(old.Networks) == 0 && len(old.Hosts) == 0 {
			return nil, nil, notFound("lab %q not found", labID)
		}
		next.Lab, next.Networks, next.Hosts = nil, map[string]*labv1.Network{}, map[string]*labv1.Host{}
		return nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.DeleteLabResponse{}, nil
}

// --- networks ---

func (s *Server) GetNetwork(ctx context.Context, req *labv1.GetNetworkRequest) (*labv1.GetNetworkResponse, error) {
	labID, id, ok := lab.ParseNetworkName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a network name (labs/{lab}/networks/{network})", req.Name)
	}
	st, err := s.read(labID)
	if err != nil {
		return nil, err
	}
	n := st.Networks[id]
	if n == nil {
		return nil, notFound("network %q not found in lab %q", id, labID)
	}
	return &labv1.GetNetworkResponse{Network: n}, nil
}

func (s *Server) ListNetworks(ctx context.Context, req *labv1.ListNetworksRequest) (*labv1.ListNetworksResponse, error) {
	labID, err := parentLab(req.Parent)
	if err != nil {
		return nil, err
	}
	nets, err := lab.ListNetworks(s.cfg.Store, labID)
	if err != nil {
		return nil, storeErr(err)
	}
	page, next, err := paginate(nets, req.PageSize, req.PageToken, (*labv1.Network).GetName)
	if err != nil {
		return nil, err
	}
	return &labv1.ListNetworksResponse{Networks: page, NextPageToken: next}, nil
}

func (s *Server) CreateNetwork(ctx context.Context, req *labv1.CreateNetworkRequest) (*labv1.CreateNetworkResponse, error) {
	labID, ok := lab.ParseLabName(req.Parent)
	if !ok {
		return nil, invalid("parent", "%q is not a lab name (labs/{lab})", req.Parent)
	}
	if !lab.ValidID(req.NetworkId) {
		return nil, invalid("network_id", "%q %s", req.NetworkId, lab.IDRule)
	}
	if req.Network == nil {
		return nil, invalid("network", "required")
	}
	name := lab.NetworkName(labID, req.NetworkId)
	st, err := s.change(ctx, labID, func(old, next *lab.State) (map[string]string, []string, error) {
		if old.Lab == nil {
			return nil, nil, notFound("lab %q not found", labID)
		}
		if old.Networks[req.NetworkId] != nil {
			return nil, nil, status.Errorf(codes.AlreadyExists, "network %q already exists in lab %q", req.NetworkId, labID)
		}
		next.Networks[req.NetworkId] = networkSpec(nil, req.Network, name, s.usedVNIs(next))
		return map[string]string{name: "network"}, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.CreateNetworkResponse{Network: st.Networks[req.NetworkId]}, nil
}

func (s *Server) UpdateNetwork(ctx context.Context, req *labv1.UpdateNetworkRequest) (*labv1.UpdateNetworkResponse, error) {
	labID, id, ok := lab.ParseNetworkName(req.GetNetwork().GetName())
	if !ok {
		return nil, invalid("network.name", "%q is not a network name (labs/{lab}/networks/{network})", req.GetNetwork().GetName())
	}
	if err := checkMask(req.UpdateMask, "ipv4", "ipv6", "mtu"); err != nil {
		return nil, err
	}
	st, err := s.change(ctx, labID, func(old, next *lab.State) (map[string]string, []string, error) {
		n := next.Networks[id]
		if n == nil {
			return nil, nil, notFound("network %q not found in lab %q", id, labID)
		}
		for _, p := range maskPaths(req.UpdateMask, "ipv4", "ipv6", "mtu") {
			switch p {
			case "ipv4":
				n.Ipv4 = req.Network.Ipv4
			case "ipv6":
				n.Ipv6 = req.Network.Ipv6
			case "mtu":
				n.Mtu = req.Network.Mtu
			}
		}
		return map[string]string{n.Name: "network"}, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.UpdateNetworkResponse{Network: st.Networks[id]}, nil
}

func (s *Server) DeleteNetwork(ctx context.Context, req *labv1.DeleteNetworkRequest) (*labv1.DeleteNetworkResponse, error) {
	labID, id, ok := lab.ParseNetworkName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a network name (labs/{lab}/networks/{network})", req.Name)
	}
	_, err := s.change(ctx, labID, func(old, next *lab.State) (map[string]string, []string, error) {
		if next.Networks[id] == nil {
			return nil, nil, notFound("network %q not found in lab %q", id, labID)
		}
		if users := usersOf(next, id); users != "" {
			return nil, nil, status.Errorf(codes.FailedPrecondition, "network %s is still used by %s", id, users)
		}
		delete(next.Networks, id)
		return nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.DeleteNetworkResponse{}, nil
}

// --- hosts ---

func (s *Server) GetHost(ctx context.Context, req *labv1.GetHostRequest) (*labv1.GetHostResponse, error) {
	labID, id, ok := lab.ParseHostName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a host name (labs/{lab}/hosts/{host})", req.Name)
	}
	h, ok, err := lab.GetHost(s.cfg.Store, labID, id)
	if err != nil {
		return nil, storeErr(err)
	}
	if !ok {
		return nil, notFound("host %q not found in lab %q", id, labID)
	}
	return &labv1.GetHostResponse{Host: h}, nil
}

func (s *Server) ListHosts(ctx context.Context, req *labv1.ListHostsRequest) (*labv1.ListHostsResponse, error) {
	labID, err := parentLab(req.Parent)
	if err != nil {
		return nil, err
	}
	hosts, err := lab.ListHosts(s.cfg.Store, labID)
	if err != nil {
		return nil, storeErr(err)
	}
	page, next, err := paginate(hosts, req.PageSize, req.PageToken, (*labv1.Host).GetName)
	if err != nil {
		return nil, err
	}
	return &labv1.ListHostsResponse{Hosts: page, NextPageToken: next}, nil
}

func (s *Server) CreateHost(ctx context.Context, req *labv1.CreateHostRequest) (*labv1.CreateHostResponse, error) {
	labID, ok := lab.ParseLabName(req.Parent)
	if !ok {
		return nil, invalid("parent", "%q is not a lab name (labs/{lab})", req.Parent)
	}
	if !lab.ValidID(req.HostId) {
		return nil, invalid("host_id", "%q %s", req.HostId, lab.IDRule)
	}
	if req.Host == nil {
		return nil, invalid("host", "required")
	}
	name := lab.HostName(labID, req.HostId)
	st, err := s.change(ctx, labID, func(old, next *lab.State) (map[string]string, []string, error) {
		if old.Lab == nil {
			return nil, nil, notFound("lab %q not found", labID)
		}
		if old.Hosts[req.HostId] != nil {
			return nil, nil, status.Errorf(codes.AlreadyExists, "host %q already exists in lab %q", req.HostId, labID)
		}
		next.Hosts[req.HostId] = hostSpec(nil, req.Host, name, s.newPlacer())
		return map[string]string{name: "host"}, []string{req.HostId}, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.CreateHostResponse{Host: st.Hosts[req.HostId]}, nil
}

func (s *Server) UpdateHost(ctx context.Context, req *labv1.UpdateHostRequest) (*labv1.UpdateHostResponse, error) {
	fields := []string{"forwarding", "interfaces", "routes", "node"}
	labID, id, ok := lab.ParseHostName(req.GetHost().GetName())
	if !ok {
		return nil, invalid("host.name", "%q is not a host name (labs/{lab}/hosts/{host})", req.GetHost().GetName())
	}
	if err := checkMask(req.UpdateMask, fields...); err != nil {
		return nil, err
	}
	st, err := s.change(ctx, labID, func(old, next *lab.State) (map[string]string, []string, error) {
		cur := old.Hosts[id]
		if cur == nil {
			return nil, nil, notFound("host %q not found in lab %q", id, labID)
		}
		h := proto.CloneOf(cur)
		upd := hostSpec(cur, req.Host, h.Name, s.newPlacer())
		for _, p := range maskPaths(req.UpdateMask, fields...) {
			switch p {
			case "forwarding":
				h.Forwarding = upd.Forwarding
			case "interfaces":
				h.Interfaces = upd.Interfaces
			case "routes":
				h.Routes = upd.Routes
			case "node":
				// A node named is a pin, as in a topology.
				h.Node, h.HomeNode, h.Pinned = upd.Node, upd.HomeNode, upd.Pinned
			}
		}
		next.Hosts[id] = h
		return map[string]string{h.Name: "host"}, []string{id}, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.UpdateHostResponse{Host: st.Hosts[id]}, nil
}

func (s *Server) DeleteHost(ctx context.Context, req *labv1.DeleteHostRequest) (*labv1.DeleteHostResponse, error) {
	labID, id, ok := lab.ParseHostName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a host name (labs/{lab}/hosts/{host})", req.Name)
	}
	_, err := s.change(ctx, labID, func(old, next *lab.State) (map[string]string, []string, error) {
		if next.Hosts[id] == nil {
			return nil, nil, notFound("host %q not found in lab %q", id, labID)
		}
		delete(next.Hosts, id)
		return nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.DeleteHostResponse{}, nil
}

// parentLab is the lab of a list's parent "labs/{lab}", or "" for "labs/-"
// (every lab).
func parentLab(parent string) (string, error) {
	if parent == lab.AllLabs || parent == "" {
		return "", nil
	}
	if id, ok := lab.ParseLabName(parent); ok {
		return id, nil
	}
	return "", invalid("parent", "%q is not a lab name (labs/{lab}, or labs/- for every lab)", parent)
}

// checkMask rejects update_mask paths outside allowed.
func checkMask(m *fieldmaskpb.FieldMask, allowed ...string) error {
	for _, p := range m.GetPaths() {
		if !slices.Contains(allowed, p) {
			return invalid("update_mask", "%q cannot be updated (updatable: %s)", p, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// maskPaths is the mask's paths, or every allowed path for an empty mask
// (AIP-134: a full replacement).
func maskPaths(m *fieldmaskpb.FieldMask, allowed ...string) []string {
	if len(m.GetPaths()) == 0 {
		return allowed
	}
	return m.GetPaths()
}

const (
	defaultPageSize = 500
	maxPageSize     = 1000
)

// paginate returns the page of items (sorted by name) after the token.
// Tokens are the last name returned, so pages stay correct while items are
// added or removed between calls.
func paginate[T any](items []T, size int32, token string, name func(T) string) ([]T, string, error) {
	if size < 0 {
		return nil, "", invalid("page_size", "must not be negative")
	}
	if size == 0 {
		size = defaultPageSize
	}
	size = min(size, maxPageSize)
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(name(a), name(b)) })
	start := 0
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, "", invalid("page_token", "not a token from a previous response")
		}
		start, _ = slices.BinarySearchFunc(items, string(after), func(t T, s string) int {
			if name(t) <= s {
				return -1
			}
			return 1
		})
	}
	end := min(len(items), start+int(size))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(name(items[end-1])))
	}
	return items[start:end], next, nil
}
