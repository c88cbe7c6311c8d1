package topology

import (
	"bytes"
	"errors"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
	"gopkg.in/yaml.v3"
)

// Marshal writes t as a topology file, in the shape Parse reads, leaving
// out empty fields: Parse(Marshal(t)) equals t. Names are written as they are
// in t (Parse keeps "labs/demo/hosts/h1" as it keeps "h1"), routes stay
// routes (the gateway shorthands are never written) and an interface that
// only names its network is written in the bare form ("- lan1"). Output-only
// fields such as Network.vni are not part of the file and are dropped.
func Marshal(t *labv1.Topology) ([]byte, error) {
	if t == nil {
		return nil, errors.New("topology: marshal: nil topology")
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(fromProto(t)); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
