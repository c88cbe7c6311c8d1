package lab

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Disown leaves the labs user owns owned by no one (a deleted user's:
// their labs stay, and only admins may change them until one hands them
// on), and returns their ids. It reads the lab records only, not their
// networks and hosts.
func Disown(tx *store.Tx, user string) ([]string, error) {
	var ids []string
	for _, rec := range tx.List(labsPrefix) {
		k, ok := ParseKey(rec.Key)
		if !ok || k.Kind != KindLab {
			continue
		}
		l := &labv1.Lab{}
		if err := proto.Unmarshal(rec.Value, l); err != nil {
			return nil, fmt.Errorf("disown %s: record %s: %w", user, rec.Key, err)
		}
		if l.Owner != user {
			continue
		}
		l.Owner = ""
		if err := PutLab(tx, l); err != nil {
			return nil, err
		}
		ids = append(ids, k.Lab)
	}
	return ids, nil
}
