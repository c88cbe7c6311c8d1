package cluster

import (
	"encoding/json"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// NodeMeta is what a node tells the others about itself, carried in
// memberlist's node metadata (at most memberlist.MetaMaxSize = 512 bytes
// once encoded).
type NodeMeta struct {
	APIAddr     string `json:"api,omitempty"`     // gRPC API, host:port
	OverlayAddr string `json:"overlay,omitempty"` // GENEVE overlay, host:port
	Version     string `json:"version,omitempty"` // labd version
	Started     int64  `json:"started,omitempty"` // when labd started, Unix seconds
	Role        string `json:"role,omitempty"`    // RoleControl or RoleMember
	RaftAddr    string `json:"raft,omitempty"`    // Raft transport, host:port (control nodes)
	Leader      bool   `json:"leader,omitempty"`  // the node is the Raft leader
	LeaderTerm  uint64 `json:"term,omitempty"`    // the Raft term it leads in (with Leader)
	// CAHash pins the cluster CA the node's certificate is from
	// ("sha256:" + hex, auth.CAHash); a node enrolling pins it.
	CAHash string `json:"ca,omitempty"`
	// CAKey says the node holds the CA's key: it serves Enroll.
	CAKey bool `json:"cakey,omitempty"`
}

// Roles (NodeMeta.Role).
const (
	RoleControl = "control"
	RoleMember  = "member"
)

// metaVersion leads the encoding so that a later format can be told apart.
const metaVersion byte = 1

// encodeMeta encodes m: a version byte, then JSON. JSON keeps the format
// readable in memberlist debugging and open to new fields; the size limit
// is checked by New.
func encodeMeta(m NodeMeta) ([]byte, error) {
	j, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	b := append([]byte{metaVersion}, j...)
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("node metadata is %d bytes encoded, over memberlist's limit of %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// decodeMeta decodes untrusted metadata from another node.
func decodeMeta(b []byte) (NodeMeta, error) {
	var m NodeMeta
	if len(b) == 0 {
		return m, nil // a node without a delegate
	}
	if len(b) > memberlist.MetaMaxSize {
		return m, fmt.Errorf("node metadata: %d bytes, over the limit of %d", len(b), memberlist.MetaMaxSize)
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("node metadata: unknown version %d", b[0])
	}
	if err := json.Unmarshal(b[1:], &m); err != nil {
		return NodeMeta{}, fmt.Errorf("node metadata: %w", err)
	}
	return m, nil
}
