package api

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Node invites and removal (docs/security.md, "members that are not
// trusted"). Who may call them (admins) is node/auth's interceptor's to
// decide; the handlers check their input and write through the Writer.

// Node invite lifetimes.
const (
	nodeInviteTTL    = time.Hour
	maxNodeInviteTTL = 7 * 24 * time.Hour
)

// CreateNodeInvite stores a single-use invite for a node of that name
// (only its token's hash) and returns the token labd --enroll takes, with
// the command to run on the new node.
func (s *Server) CreateNodeInvite(ctx context.Context, req *labv1.CreateNodeInviteRequest) (*labv1.CreateNodeInviteResponse, error) {
	var v violations
	if err := checkNodeID(req.NodeId); err != nil {
		v.add("node_id", "%v", err)
	}
	owner := req.Owner
	if owner != "" {
		if id, ok := lab.ParseUserName(owner); ok {
			owner = id
		}
		if !lab.ValidID(owner) {
			v.add("owner", "%q is not a user (users/{user})", req.Owner)
		}
	}
	ttl := nodeInviteTTL
	if req.Ttl != nil {
		if err := req.Ttl.CheckValid(); err != nil {
			v.add("ttl", "not a valid duration: %v", err)
		} else if ttl = req.Ttl.AsDuration(); ttl <= 0 || ttl > maxNodeInviteTTL {
			v.add("ttl", "%v: must be positive and at most 7 days", ttl)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if owner != "" {
		if _, ok := lab.GetUser(lab.StoreGetter{St: s.cfg.Store}, owner); !ok {
			return nil, notFound("user %q not found: the owner must be an existing user (labctl user add)", owner)
		}
	}
	var server, caHash string
	if s.cfg.Invite != nil {
		server, caHash = s.cfg.Invite()
	}
	if server == "" || caHash == "" {
		return nil, status.Error(codes.FailedPrecondition, "this node cannot make node invites: it knows no cluster CA yet")
	}
	key, id, hash := identity.NewToken()
	now := s.cfg.Now()
	inv := lab.NodeInvite{ID: id, Node: req.NodeId, Owner: owner, Control: req.Control, Hash: hash, Created: now, Expires: now.Add(ttl)}
	err := s.update(ctx, func(tx *store.Tx) error {
		if owner != "" {
			if _, ok := lab.GetUser(tx, owner); !ok {
				return notFound("user %q not found", owner)
			}
		}
		return lab.PutNodeInvite(tx, inv)
	})
	if err != nil {
		return nil, err
	}
	token := auth.EnrollToken{API: server, CAHash: caHash, Key: key}.String()
	cmd := "labd --name " + req.NodeId
	if req.Control {
		cmd += " --control"
	}
	if s.cfg.Gossip != nil {
		if g := s.cfg.Gossip(); g != "" {
			cmd += " --join " + g
		}
	}
	cmd += " --enroll " + token
	return &labv1.CreateNodeInviteResponse{Token: token, Command: cmd, ExpireTime: timestamppb.New(inv.Expires)}, nil
}

// RemoveNode marks a node's identity removed, in one write: every node
// then refuses its certificate, and the leader fails its hosts over.
func (s *Server) RemoveNode(ctx context.Context, req *labv1.RemoveNodeRequest) (*labv1.RemoveNodeResponse, error) {
	if req.Name == "" {
		return nil, invalid("name", "required: nodes/{node}")
	}
	node := lab.NodeID(req.Name)
	if err := checkNodeID(node); err != nil {
		return nil, invalid("name", "%v", err)
	}
	if node == s.cfg.Node {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s serves this call: remove it through another node", node)
	}
	listed, inCluster := s.findNode(node)
	if inCluster && listed.GetRole() == labv1.NodeRole_NODE_ROLE_CONTROL {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is a control node: demote it first (labctl node demote %s)", node, node)
	}
	now := s.cfg.Now()
	err := s.update(ctx, func(tx *store.Tx) error {
		id, ok := lab.GetNodeIdentity(tx, node)
		if !ok && !inCluster {
			return notFound("node %q not found", node)
		}
		if !ok {
			id = lab.NodeIdentity{Name: node, Kind: auth.KindMember}
		}
		if id.Removed {
			return errAbort // removed already: nothing to write
		}
		id.Removed, id.RemovedAt = true, now
		return lab.PutNodeIdentity(tx, id)
	})
	if err != nil {
		return nil, err
	}
	if listed == nil {
		listed = &labv1.Node{Name: lab.NodeName(node)}
	}
	listed.Removed = true
	return &labv1.RemoveNodeResponse{Node: listed}, nil
}

// checkNodeID is labd's --name rule (no slash, no white space), with what
// a certificate needs: printable, and at most 253 bytes.
func checkNodeID(node string) error {
	if node == "" {
		return fmt.Errorf("required: the node's name (labd --name)")
	}
	if len(node) > 253 || strings.ContainsFunc(node, func(r rune) bool {
		return r == '/' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) {
		return fmt.Errorf("%q is not a node name (no slash, no white space, printable, at most 253 bytes)", node)
	}
	return nil
}
