package api

import (
	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Resource names and the store's layout are the lab model's (node/lab).
// The live, capture and socket handlers call these thin wrappers; the
// other handlers call node/lab directly.

func validID(id string) bool { return lab.ValidID(id) }

const idRule = lab.IDRule

func labName(l string) string                 { return lab.LabName(l) }
func networkName(l, id string) string         { return lab.NetworkName(l, id) }
func hostName(l, id string) string            { return lab.HostName(l, id) }
func parseLabName(name string) (string, bool) { return lab.ParseLabName(name) }

// parseChild parses "labs/{lab}/{collection}/{id}".
func parseChild(name, collection string) (l, id string, ok bool) {
	return lab.ParseChild(name, lab.Collection(collection))
}

// shortID accepts "id" or "labs/{lab}/{collection}/{id}" (of the same lab)
// and returns id.
func shortID(name, l, collection string) (string, bool) {
	return lab.ShortID(name, l, lab.Collection(collection))
}

// lastSegment returns what follows the last "/".
func lastSegment(name string) string { return lab.ID(name) }

func sortedKeys[V any](m map[string]V) []string { return lab.SortedKeys(m) }

// labState is a lab's state as the capture handlers read it.
type labState struct {
	lab   *labv1.Lab
	nets  map[string]*labv1.Network
	hosts map[string]*labv1.Host
}

func loadLab(r lab.Reader, id string) (*labState, error) {
	st, err := lab.Load(r, id)
	if err != nil {
		return nil, err
	}
	return &labState{lab: st.Lab, nets: st.Networks, hosts: st.Hosts}, nil
}
