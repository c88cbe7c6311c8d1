package lab

import (
	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// NewDirectory is the identity.Directory of st, the local replica of the
// control plane's state: what the API checks every call against. Every
// answer is one map lookup (never a scan: it runs on every call), so it
// is as fresh as the replica.
func NewDirectory(st *store.Store) identity.Directory { return directory{StoreGetter{st}} }

type directory struct{ g StoreGetter }

func (d directory) User(id string) (identity.Role, bool) {
	u, ok := GetUser(d.g, id)
	return u.Role, ok
}

func (d directory) Token(id string) (identity.Token, bool) { return GetToken(d.g, id) }

// HostOwner reads the owner field of host id of lab.
func (d directory) HostOwner(lab, id string) string {
	if !ValidID(lab) || !ValidID(id) {
		return ""
	}
	v, ok := d.g.Get(HostName(lab, id))
	if !ok {
		return ""
	}
	var h labv1.Host
	if proto.Unmarshal(v, &h) != nil {
		return ""
	}
	return h.Owner
}

// Lab reads lab id's record. A lab that has networks or hosts but no lab
// record (stored before labs had records) reads as absent: finding it
// would take a scan.
func (d directory) Lab(id string) (identity.LabInfo, bool) {
	if !ValidID(id) {
		return identity.LabInfo{}, false
	}
	v, ok := d.g.Get(LabName(id))
	if !ok {
		return identity.LabInfo{}, false
	}
	var l labv1.Lab
	if proto.Unmarshal(v, &l) != nil {
		return identity.LabInfo{}, false
	}
	return identity.LabInfo{Owner: l.Owner, Shared: l.Shared}, true
}

// Node reads node name's identity record.
func (d directory) Node(name string) (identity.NodeInfo, bool) {
	n, ok := GetNodeIdentity(d.g, name)
	return identity.NodeInfo{Serial: n.Serial, Removed: n.Removed, NotBefore: n.NotBefore}, ok
}
