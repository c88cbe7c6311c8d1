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

	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// change edits one lab in a store transaction: fn edits next (a copy of
// old) and returns the request's field path of each resource it wrote and
// the hosts to normalize; the result is validated as a whole and written.
func (s *Server) change(lab string, fn func(old, next *labState) (map[string]string, []string, error)) (*labState, error) {
	var result *labState
	err := s.update(func(tx *store.Tx) error {
		old, err := loadLab(tx, lab)
		if err != nil {
			return err
		}
		next := old.clone()
		paths, hostIDs, err := fn(old, next)
		if err != nil {
			return err
		}
		normalize(next, old, hostIDs)
		var named []string
		for name := range paths {
			named = append(named, name)
		}
		if err := validateLab(next, pathsOf(paths), named).err(); err != nil {
			return err
		}
		result = next
		return write(tx, old, next)
	})
	return result, err
}

// read loads a lab for a read-only call.
func (s *Server) read(lab string) (*labState, error) {
	st, err := loadLab(s.cfg.Store, lab)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "store: %v", err)
	}
	return st, nil
}

func (s *Server) withCounts(st *labState) *labv1.Lab {
	l := proto.Clone(st.lab).(*labv1.Lab)
	l.NetworkCount = int32(len(st.nets))
	l.HostCount = int32(len(st.hosts))
	return l
}

// --- labs ---

func (s *Server) GetLab(ctx context.Context, req *labv1.GetLabRequest) (*labv1.GetLabResponse, error) {
	lab, ok := parseLabName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a lab name (labs/{lab})", req.Name)
	}
	st, err := s.read(lab)
	if err != nil {
		return nil, err
	}
	if st.lab == nil {
		return nil, notFound("lab %q not found", lab)
	}
	return &labv1.GetLabResponse{Lab: s.withCounts(st)}, nil
}

func (s *Server) ListLabs(ctx context.Context, req *labv1.ListLabsRequest) (*labv1.ListLabsResponse, error) {
	var labs []*labv1.Lab
	for _, rec := range s.cfg.Store.List("labs/") {
		lab, ok := parseLabName(rec.Key)
		if !ok {
			continue
		}
		st, err := s.read(lab)
		if err != nil {
			return nil, err
		}
		if st.lab != nil {
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
	if !validID(req.LabId) {
		return nil, invalid("lab_id", "%q %s", req.LabId, idRule)
	}
	st, err := s.change(req.LabId, func(old, next *labState) (map[string]string, []string, error) {
		if old.lab != nil {
			return nil, nil, status.Errorf(codes.AlreadyExists, "lab %q already exists", req.LabId)
		}
		next.lab = &labv1.Lab{Name: labName(req.LabId), Description: req.GetLab().GetDescription(), CreateTime: timestamppb.New(s.cfg.Now())}
		return nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.CreateLabResponse{Lab: s.withCounts(st)}, nil
}

func (s *Server) UpdateLab(ctx context.Context, req *labv1.UpdateLabRequest) (*labv1.UpdateLabResponse, error) {
	lab, ok := parseLabName(req.GetLab().GetName())
	if !ok {
		return nil, invalid("lab.name", "%q is not a lab name (labs/{lab})", req.GetLab().GetName())
	}
	if err := checkMask(req.UpdateMask, "description"); err != nil {
		return nil, err
	}
	st, err := s.change(lab, func(old, next *labState) (map[string]string, []string, error) {
		if old.lab == nil {
			return nil, nil, notFound("lab %q not found", lab)
		}
		next.lab.Description = req.Lab.Description
		return nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.UpdateLabResponse{Lab: s.withCounts(st)}, nil
}

func (s *Server) DeleteLab(ctx context.Context, req *labv1.DeleteLabRequest) (*labv1.DeleteLabResponse, error) {
	lab, ok := parseLabName(req.Name)
	if !ok {
		return nil, invalid("name", "%q is not a lab name (labs/{lab})", req.Name)
	}
	_, err := s.change(lab, func(old, next *labState) (map[string]string, []string, error) {
		if old.lab == nil && len(old.nets) == 0 && len(old.hosts) == 0 {
			return nil, nil, notFound("lab %q not found", lab)
		}
		next.lab, next.nets, next.hosts = nil, map[string]*labv1.Network{}, map[string]*labv1.Host{}
		return nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.DeleteLabResponse{}, nil
}

// --- networks ---

func (s *Server) GetNetwork(ctx context.Context, req *labv1.GetNetworkRequest) (*labv1.GetNetworkResponse, error) {
	lab, id, ok := parseChild(req.Name, "networks")
	if !ok {
		return nil, invalid("name", "%q is not a network name (labs/{lab}/networks/{network})", req.Name)
	}
	st, err := s.read(lab)
	if err != nil {
		return nil, err
	}
	n := st.nets[id]
	if n == nil {
		return nil, notFound("network %q not found in lab %q", id, lab)
	}
	return &labv1.GetNetworkResponse{Network: n}, nil
}

func (s *Server) ListNetworks(ctx context.Context, req *labv1.ListNetworksRequest) (*labv1.ListNetworksResponse, error) {
	recs, err := s.listChildren(req.Parent, "networks")
	if err != nil {
		return nil, err
	}
	var nets []*labv1.Network
	for _, rec := range recs {
		n := &labv1.Network{}
		if err := proto.Unmarshal(rec.Value, n); err != nil {
			return nil, status.Errorf(codes.Internal, "record %s: %v", rec.Key, err)
		}
		nets = append(nets, n)
	}
	page, next, err := paginate(nets, req.PageSize, req.PageToken, (*labv1.Network).GetName)
	if err != nil {
		return nil, err
	}
	return &labv1.ListNetworksResponse{Networks: page, NextPageToken: next}, nil
}

func (s *Server) CreateNetwork(ctx context.Context, req *labv1.CreateNetworkRequest) (*labv1.CreateNetworkResponse, error) {
	lab, ok := parseLabName(req.Parent)
	if !ok {
		return nil, invalid("parent", "%q is not a lab name (labs/{lab})", req.Parent)
	}
	if !validID(req.NetworkId) {
		return nil, invalid("network_id", "%q %s", req.NetworkId, idRule)
	}
	if req.Network == nil {
		return nil, invalid("network", "required")
	}
	name := networkName(lab, req.NetworkId)
	st, err := s.change(lab, func(old, next *labState) (map[string]string, []string, error) {
		if old.lab == nil {
			return nil, nil, notFound("lab %q not found", lab)
		}
		if old.nets[req.NetworkId] != nil {
			return nil, nil, status.Errorf(codes.AlreadyExists, "network %q already exists in lab %q", req.NetworkId, lab)
		}
		next.nets[req.NetworkId] = s.networkSpec(next, nil, req.Network, name)
		return map[string]string{name: "network"}, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.CreateNetworkResponse{Network: st.nets[req.NetworkId]}, nil
}

func (s *Server) UpdateNetwork(ctx context.Context, req *labv1.UpdateNetworkRequest) (*labv1.UpdateNetworkResponse, error) {
	lab, id, ok := parseChild(req.GetNetwork().GetName(), "networks")
	if !ok {
		return nil, invalid("network.name", "%q is not a network name (labs/{lab}/networks/{network})", req.GetNetwork().GetName())
	}
	if err := checkMask(req.UpdateMask, "ipv4", "ipv6", "mtu"); err != nil {
		return nil, err
	}
	st, err := s.change(lab, func(old, next *labState) (map[string]string, []string, error) {
		n := next.nets[id]
		if n == nil {
			return nil, nil, notFound("network %q not found in lab %q", id, lab)
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
	return &labv1.UpdateNetworkResponse{Network: st.nets[id]}, nil
}

func (s *Server) DeleteNetwork(ctx context.Context, req *labv1.DeleteNetworkRequest) (*labv1.DeleteNetworkResponse, error) {
	lab, id, ok := parseChild(req.Name, "networks")
	if !ok {
		return nil, invalid("name", "%q is not a network name (labs/{lab}/networks/{network})", req.Name)
	}
	_, err := s.change(lab, func(old, next *labState) (map[string]string, []string, error) {
		if next.nets[id] == nil {
			return nil, nil, notFound("network %q not found in lab %q", id, lab)
		}
		if users := usersOf(next, id); users != "" {
			return nil, nil, status.Errorf(codes.FailedPrecondition, "network %s is still used by %s", id, users)
		}
		delete(next.nets, id)
		return nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.DeleteNetworkResponse{}, nil
}

// --- hosts ---

func (s *Server) GetHost(ctx context.Context, req *labv1.GetHostRequest) (*labv1.GetHostResponse, error) {
	lab, id, ok := parseChild(req.Name, "hosts")
	if !ok {
		return nil, invalid("name", "%q is not a host name (labs/{lab}/hosts/{host})", req.Name)
	}
	rec, ok := s.cfg.Store.Get(hostName(lab, id))
	if !ok {
		return nil, notFound("host %q not found in lab %q", id, lab)
	}
	h := &labv1.Host{}
	if err := proto.Unmarshal(rec.Value, h); err != nil {
		return nil, status.Errorf(codes.Internal, "record %s: %v", rec.Key, err)
	}
	return &labv1.GetHostResponse{Host: h}, nil
}

func (s *Server) ListHosts(ctx context.Context, req *labv1.ListHostsRequest) (*labv1.ListHostsResponse, error) {
	recs, err := s.listChildren(req.Parent, "hosts")
	if err != nil {
		return nil, err
	}
	var hosts []*labv1.Host
	for _, rec := range recs {
		h := &labv1.Host{}
		if err := proto.Unmarshal(rec.Value, h); err != nil {
			return nil, status.Errorf(codes.Internal, "record %s: %v", rec.Key, err)
		}
		hosts = append(hosts, h)
	}
	page, next, err := paginate(hosts, req.PageSize, req.PageToken, (*labv1.Host).GetName)
	if err != nil {
		return nil, err
	}
	return &labv1.ListHostsResponse{Hosts: page, NextPageToken: next}, nil
}

func (s *Server) CreateHost(ctx context.Context, req *labv1.CreateHostRequest) (*labv1.CreateHostResponse, error) {
	lab, ok := parseLabName(req.Parent)
	if !ok {
		return nil, invalid("parent", "%q is not a lab name (labs/{lab})", req.Parent)
	}
	if !validID(req.HostId) {
		return nil, invalid("host_id", "%q %s", req.HostId, idRule)
	}
	if req.Host == nil {
		return nil, invalid("host", "required")
	}
	name := hostName(lab, req.HostId)
	st, err := s.change(lab, func(old, next *labState) (map[string]string, []string, error) {
		if old.lab == nil {
			return nil, nil, notFound("lab %q not found", lab)
		}
		if old.hosts[req.HostId] != nil {
			return nil, nil, status.Errorf(codes.AlreadyExists, "host %q already exists in lab %q", req.HostId, lab)
		}
		next.hosts[req.HostId] = s.hostSpec(nil, req.Host, name, s.newPlacer())
		return map[string]string{name: "host"}, []string{req.HostId}, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.CreateHostResponse{Host: st.hosts[req.HostId]}, nil
}

func (s *Server) UpdateHost(ctx context.Context, req *labv1.UpdateHostRequest) (*labv1.UpdateHostResponse, error) {
	fields := []string{"forwarding", "interfaces", "routes", "node"}
	lab, id, ok := parseChild(req.GetHost().GetName(), "hosts")
	if !ok {
		return nil, invalid("host.name", "%q is not a host name (labs/{lab}/hosts/{host})", req.GetHost().GetName())
	}
	if err := checkMask(req.UpdateMask, fields...); err != nil {
		return nil, err
	}
	st, err := s.change(lab, func(old, next *labState) (map[string]string, []string, error) {
		cur := old.hosts[id]
		if cur == nil {
			return nil, nil, notFound("host %q not found in lab %q", id, lab)
		}
		h := proto.Clone(cur).(*labv1.Host)
		upd := s.hostSpec(cur, req.Host, h.Name, s.newPlacer())
		for _, p := range maskPaths(req.UpdateMask, fields...) {
			switch p {
			case "forwarding":
				h.Forwarding = upd.Forwarding
			case "interfaces":
				h.Interfaces = upd.Interfaces
			case "routes":
				h.Routes = upd.Routes
			case "node":
				h.Node = upd.Node
			}
		}
		next.hosts[id] = h
		return map[string]string{h.Name: "host"}, []string{id}, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.UpdateHostResponse{Host: st.hosts[id]}, nil
}

func (s *Server) DeleteHost(ctx context.Context, req *labv1.DeleteHostRequest) (*labv1.DeleteHostResponse, error) {
	lab, id, ok := parseChild(req.Name, "hosts")
	if !ok {
		return nil, invalid("name", "%q is not a host name (labs/{lab}/hosts/{host})", req.Name)
	}
	_, err := s.change(lab, func(old, next *labState) (map[string]string, []string, error) {
		if next.hosts[id] == nil {
			return nil, nil, notFound("host %q not found in lab %q", id, lab)
		}
		delete(next.hosts, id)
		return nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return &labv1.DeleteHostResponse{}, nil
}

// listChildren lists the records of a collection under parent "labs/{lab}"
// or "labs/-" (every lab).
func (s *Server) listChildren(parent, collection string) ([]store.Record, error) {
	var prefix string
	if parent == "labs/-" || parent == "" {
		prefix = "labs/"
	} else if lab, ok := parseLabName(parent); ok {
		prefix = labPrefix(lab) + collection + "/"
	} else {
		return nil, invalid("parent", "%q is not a lab name (labs/{lab}, or labs/- for every lab)", parent)
	}
	var out []store.Record
	for _, rec := range s.cfg.Store.List(prefix) {
		if _, _, ok := parseChild(rec.Key, collection); ok {
			out = append(out, rec)
		}
	}
	return out, nil
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
