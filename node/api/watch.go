package api

import (
	"bytes"
	"slices"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Watch kinds, as WatchRequest.kinds names them.
const (
	watchLabs     = "labs"
	watchNetworks = "networks"
	watchHosts    = "hosts"
)

// watchItem is one resource as a watch last saw it: its kind and its
// encoding. Network and host items are the stored record value; lab items
// are the lab with its counts (as GetLab returns it), so that adding a host
// makes its lab MODIFIED.
type watchItem struct {
	kind  string
	value []byte
}

// watchFilter is a validated WatchRequest.
type watchFilter struct {
	lab   string // "" for every lab
	kinds map[string]bool
}

func parseWatch(req *labv1.WatchRequest) (watchFilter, error) {
	var f watchFilter
	switch p := req.GetParent(); p {
	case "", lab.AllLabs:
	default:
		id, ok := lab.ParseLabName(p)
		if !ok {
			return f, invalid("parent", "%q is not a lab name (labs/{lab}, or labs/- for every lab)", p)
		}
		f.lab = id
	}
	f.kinds = map[string]bool{}
	for i, k := range req.GetKinds() {
		switch k {
		case watchLabs, watchNetworks, watchHosts:
			f.kinds[k] = true
		default:
			return f, invalid(join("kinds", "["+strconv.Itoa(i)+"]"), "%q is not a kind (labs, networks or hosts)", k)
		}
	}
	if len(f.kinds) == 0 {
		f.kinds = map[string]bool{watchLabs: true, watchNetworks: true, watchHosts: true}
	}
	return f, nil
}

// Watch streams the resources under req.parent: the current state as
// ADDED, then SYNCED, then what changes. It subscribes to the store before
// it reads it, so no change falls between the initial state and the first
// signal. Each signal (several store changes may be coalesced into one) is
// answered by diffing a fresh snapshot against what was last sent, by key
// and encoded value: a client always converges on the current state, though
// it may not see every intermediate one.
func (s *Server) Watch(req *labv1.WatchRequest, stream labv1.LabService_WatchServer) error {
	f, err := parseWatch(req)
	if err != nil {
		return err
	}
	changed, unsubscribe := s.cfg.Store.Subscribe()
	defer unsubscribe()
	ctx := stream.Context()

	cur, rev, err := s.watchSnapshot(f)
	if err != nil {
		return err
	}
	for _, key := range lab.SortedKeys(cur) {
		if err := s.sendWatch(stream, rev, labv1.WatchEventType_WATCH_EVENT_TYPE_ADDED, key, cur[key]); err != nil {
			return err
		}
	}
	sent := cur
	if err := stream.Send(&labv1.WatchResponse{Revision: rev, Type: labv1.WatchEventType_WATCH_EVENT_TYPE_SYNCED}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.stopping:
			return status.Error(codes.Unavailable, "labd is shutting down")
		case <-changed:
		}
		cur, rev, err := s.watchSnapshot(f)
		if err != nil {
			return err
		}
		keys := lab.SortedKeys(cur)
		for key := range sent {
			if _, ok := cur[key]; !ok {
				keys = append(keys, key)
			}
		}
		slices.Sort(keys)
		for _, key := range keys {
			before, had := sent[key]
			after, has := cur[key]
			var err error
			switch {
			case !had:
				err = s.sendWatch(stream, rev, labv1.WatchEventType_WATCH_EVENT_TYPE_ADDED, key, after)
			case !has:
				err = s.sendWatch(stream, rev, labv1.WatchEventType_WATCH_EVENT_TYPE_DELETED, key, before)
			case !bytes.Equal(before.value, after.value):
				err = s.sendWatch(stream, rev, labv1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED, key, after)
			}
			if err != nil {
				return err
			}
		}
		sent = cur
	}
}

// watchSnapshot reads the resources f selects, keyed by name, and the
// store revision they reflect.
func (s *Server) watchSnapshot(f watchFilter) (map[string]watchItem, uint64, error) {
	recs, rev := lab.Snapshot(s.cfg.Store, f.lab)
	out := map[string]watchItem{}
	labs := map[string]*lab.State{} // lab id -> its lab and counts
	state := func(id string) *lab.State {
		st := labs[id]
		if st == nil {
			st = lab.NewState(id)
			labs[id] = st
		}
		return st
	}
	for _, rec := range recs {
		k := rec.Key
		switch k.Kind {
		case lab.KindLab:
			l := &labv1.Lab{}
			if err := proto.Unmarshal(rec.Value, l); err != nil {
				return nil, 0, status.Errorf(codes.Internal, "record %s: %v", k, err)
			}
			state(k.Lab).Lab = l
		case lab.KindNetwork:
			// Only the counts matter here: nil values keep len() right.
			state(k.Lab).Networks[k.ID] = nil
			if f.kinds[watchNetworks] {
				out[k.String()] = watchItem{kind: watchNetworks, value: rec.Value}
			}
		case lab.KindHost:
			state(k.Lab).Hosts[k.ID] = nil
			if f.kinds[watchHosts] {
				out[k.String()] = watchItem{kind: watchHosts, value: rec.Value}
			}
		}
	}
	if f.kinds[watchLabs] {
		for id, st := range labs {
			if st.Lab == nil {
				continue
			}
			b, err := watchMarshal.Marshal(s.withCounts(st))
			if err != nil {
				return nil, 0, status.Errorf(codes.Internal, "lab %s: %v", id, err)
			}
			out[lab.LabName(id)] = watchItem{kind: watchLabs, value: b}
		}
	}
	return out, rev, nil
}

// watchMarshal encodes a lab the same way every time, so that equal labs
// compare equal.
var watchMarshal = proto.MarshalOptions{Deterministic: true}

func (s *Server) sendWatch(stream labv1.LabService_WatchServer, rev uint64, typ labv1.WatchEventType, name string, it watchItem) error {
	resp := &labv1.WatchResponse{Revision: rev, Type: typ, Name: name}
	var err error
	switch it.kind {
	case watchLabs:
		m := &labv1.Lab{}
		err = proto.Unmarshal(it.value, m)
		resp.Resource = &labv1.WatchResponse_Lab{Lab: m}
	case watchNetworks:
		m := &labv1.Network{}
		err = proto.Unmarshal(it.value, m)
		resp.Resource = &labv1.WatchResponse_Network{Network: m}
	case watchHosts:
		m := &labv1.Host{}
		err = proto.Unmarshal(it.value, m)
		resp.Resource = &labv1.WatchResponse_Host{Host: m}
	}
	if err != nil {
		return status.Errorf(codes.Internal, "record %s: %v", name, err)
	}
	return stream.Send(resp)
}
