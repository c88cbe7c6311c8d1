package cluster

import (
	"encoding/json"
	"errors"
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

// metaVersion leads the encoding so that a later format can be told apart:
// metaVersion is unsigned metadata (a node without a certificate), then
// its JSON; metaSigned is signed metadata: one byte of signature length,
// the signature (identity.go: ASN.1 ECDSA P-256, at most maxSigLen bytes),
// then the JSON.
const (
	metaVersion byte = 1
	metaSigned  byte = 2
)

// maxSigLen is the longest ASN.1 ECDSA P-256 signature: a sequence of two
// integers of up to 33 bytes each.
const maxSigLen = 72

// encodeMeta encodes m unsigned: a version byte, then JSON. JSON keeps the
// format readable in memberlist debugging and open to new fields. The size
// limit is checked with room for a signature, so that metadata that fits
// unsigned fits signed too.
func encodeMeta(m NodeMeta) ([]byte, error) {
	j, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	b := append([]byte{metaVersion}, j...)
	if n := len(b) + 1 + maxSigLen; n > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("node metadata is %d bytes encoded and signed, over memberlist's limit of %d", n, memberlist.MetaMaxSize)
	}
	return b, nil
}

// signedMeta is unsigned metadata b (encodeMeta's) with sig added.
func signedMeta(b, sig []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != metaVersion || len(sig) == 0 || len(sig) > maxSigLen {
		return nil, fmt.Errorf("node metadata: cannot add a signature of %d bytes", len(sig))
	}
	out := make([]byte, 0, 2+len(sig)+len(b)-1)
	out = append(out, metaSigned, byte(len(sig)))
	out = append(out, sig...)
	return append(out, b[1:]...), nil
}

// splitMeta splits untrusted metadata into its JSON body and its
// signature (nil when unsigned).
func splitMeta(b []byte) (body, sig []byte, err error) {
	if len(b) > memberlist.MetaMaxSize {
		return nil, nil, fmt.Errorf("node metadata: %d bytes, over the limit of %d", len(b), memberlist.MetaMaxSize)
	}
	if len(b) == 0 {
		return nil, nil, errors.New("node metadata: empty")
	}
	switch b[0] {
	case metaVersion:
		return b[1:], nil, nil
	case metaSigned:
		if len(b) < 2 {
			return nil, nil, errors.New("node metadata: truncated signature")
		}
		n := int(b[1])
		if n == 0 || n > maxSigLen || len(b) < 2+n {
			return nil, nil, fmt.Errorf("node metadata: bad signature length %d", n)
		}
		return b[2+n:], b[2 : 2+n], nil
	}
	return nil, nil, fmt.Errorf("node metadata: unknown version %d", b[0])
}

// decodeMeta decodes untrusted metadata from another node.
func decodeMeta(b []byte) (NodeMeta, error) {
	var m NodeMeta
	if len(b) == 0 {
		return m, nil // a node without a delegate
	}
	body, _, err := splitMeta(b)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return NodeMeta{}, fmt.Errorf("node metadata: %w", err)
	}
	return m, nil
}
