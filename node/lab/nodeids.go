package lab

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/labnet-dev/labnet/node/store"
)

// Node identities and node invites (docs/security.md, "members that are
// not trusted"), in the control plane's state so that every node checks
// its peers against its replica: "nodeids/{node}" is what enrolment
// granted a node (its certificate, kind and owner, and whether it was
// removed); "nodeinvites/{id}" is a single-use enrolment token's hash,
// bound to the node it may enrol.
const (
	nodeIDsPrefix     = "nodeids/"
	nodeInvitesPrefix = "nodeinvites/"
)

// NodeIdentity is a node's enrolled identity.
type NodeIdentity struct {
	Name  string `json:"-"`
	Kind  string `json:"kind"`            // "control" or "member"
	Owner string `json:"owner,omitempty"` // a user id; "" for none
	// Cert is the node's certificate (DER): its serial, expiry and public
	// key are what peers check.
	Cert     []byte    `json:"cert"`
	Serial   string    `json:"serial"` // hex, as the certificate's
	NotAfter time.Time `json:"not_after"`
	// NotBefore is the certificate's: a certificate of the node issued
	// later is newer (zero in records made before it was kept).
	NotBefore time.Time `json:"not_before,omitzero"`
	Removed   bool      `json:"removed,omitempty"`
	RemovedAt time.Time `json:"removed_at,omitzero"`
}

// PutNodeIdentity writes n.
func PutNodeIdentity(tx *store.Tx, n NodeIdentity) error {
	if n.Name == "" || strings.ContainsAny(n.Name, "/ \t\n") {
		return fmt.Errorf("put node identity: %q is not a node name", n.Name)
	}
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	tx.Put(nodeIDsPrefix+n.Name, b)
	return nil
}

// GetNodeIdentity reads node's identity; ok is false when it has none.
func GetNodeIdentity(g Getter, node string) (n NodeIdentity, ok bool) {
	v, ok := g.Get(nodeIDsPrefix + node)
	if !ok || json.Unmarshal(v, &n) != nil {
		return NodeIdentity{}, false
	}
	n.Name = node
	return n, true
}

// ListNodeIdentities lists every node identity, sorted by name.
func ListNodeIdentities(r Reader) []NodeIdentity {
	var out []NodeIdentity
	for _, rec := range r.List(nodeIDsPrefix) {
		var n NodeIdentity
		if json.Unmarshal(rec.Value, &n) == nil {
			n.Name = rec.Key[len(nodeIDsPrefix):]
			out = append(out, n)
		}
	}
	return out
}

// NodeInvite is a stored node enrolment token: its hash, never its secret.
type NodeInvite struct {
	ID      string    `json:"-"`
	Node    string    `json:"node"`
	Owner   string    `json:"owner,omitempty"`
	Control bool      `json:"control,omitempty"`
	Hash    [32]byte  `json:"-"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

type nodeInviteRecord struct {
	NodeInvite
	Hash string `json:"hash"`
}

// PutNodeInvite writes inv.
func PutNodeInvite(tx *store.Tx, inv NodeInvite) error {
	if inv.ID == "" || strings.Contains(inv.ID, "/") {
		return fmt.Errorf("put node invite: %q is not an invite id", inv.ID)
	}
	b, err := json.Marshal(nodeInviteRecord{NodeInvite: inv, Hash: hex.EncodeToString(inv.Hash[:])})
	if err != nil {
		return err
	}
	tx.Put(nodeInvitesPrefix+inv.ID, b)
	return nil
}

// GetNodeInvite reads invite id; ok is false when there is none.
func GetNodeInvite(g Getter, id string) (NodeInvite, bool) {
	v, ok := g.Get(nodeInvitesPrefix + id)
	if !ok {
		return NodeInvite{}, false
	}
	var rec nodeInviteRecord
	if json.Unmarshal(v, &rec) != nil {
		return NodeInvite{}, false
	}
	h, err := hex.DecodeString(rec.Hash)
	if err != nil || len(h) != 32 {
		return NodeInvite{}, false
	}
	inv := rec.NodeInvite
	inv.ID = id
	copy(inv.Hash[:], h)
	return inv, true
}

// DeleteNodeInvite deletes invite id (used up, or expired).
func DeleteNodeInvite(tx *store.Tx, id string) { tx.Delete(nodeInvitesPrefix + id) }
