package lab

import (
	"slices"
	"time"
)

// Rotation of the gossip keys (the leader's, node/gossipkeys.go), in three
// steps, each a new generation of the record:
//
//  1. "rotate": a removed identity that the record does not cover yet
//     (another node's removal) adds a new key after the others, pending:
//     every node installs it for decryption only.
//  2. "promote": after promoteAfter the pending key becomes primary:
//     every node now encrypts with it and a removed node, which never got
//     it, can no longer read gossip.
//  3. "drop": after dropAfter the keys other than the primary are
//     dropped: a removed node can no longer speak gossip either.
//
// A removal during a rotation starts another once the pending key is
// primary (it may have seen the pending key).

// Rotation steps, as NextGossipKeys names them.
const (
	KeyRotate  = "rotate"
	KeyPromote = "promote"
	KeyDrop    = "drop"
)

// NextGossipKeys is what the leader writes next, given the keyring k, the
// node identities and the time: the new keyring and the step ("" when
// nothing is due). newKey is called for a new key only when one is
// needed.
func NextGossipKeys(k GossipKeys, ids []NodeIdentity, now time.Time, promoteAfter, dropAfter time.Duration, newKey func() ([]byte, error)) (GossipKeys, string, error) {
	next := k
	next.Keys = slices.Clone(k.Keys)
	next.Covered = slices.Clone(k.Covered)
	switch {
	case k.Pending:
		if now.Sub(k.Changed) < promoteAfter {
			return k, "", nil
		}
		last := next.Keys[len(next.Keys)-1]
		next.Keys = append([][]byte{last}, next.Keys[:len(next.Keys)-1]...)
		next.Pending = false
		return next.bump(now), KeyPromote, nil
	case len(uncovered(k, ids)) > 0:
		if len(next.Keys) >= MaxGossipKeys {
			next.Keys = next.Keys[:1] // drop early rather than refuse to rotate
		}
		key, err := newKey()
		if err != nil {
			return k, "", err
		}
		next.Keys = append(next.Keys, key)
		next.Pending = true
		next.Covered = removals(ids)
		return next.bump(now), KeyRotate, nil
	case len(k.Keys) > 1 && now.Sub(k.Changed) >= dropAfter:
		next.Keys = next.Keys[:1]
		return next.bump(now), KeyDrop, nil
	}
	return k, "", nil
}

func (k GossipKeys) bump(now time.Time) GossipKeys {
	k.Generation++
	k.Changed = now
	return k
}

// uncovered are the removed identities k was not rotated for.
func uncovered(k GossipKeys, ids []NodeIdentity) []GossipKeyRemoval {
	var out []GossipKeyRemoval
	for _, r := range removals(ids) {
		if !slices.ContainsFunc(k.Covered, func(c GossipKeyRemoval) bool { return c.Node == r.Node && c.At.Equal(r.At) }) {
			out = append(out, r)
		}
	}
	return out
}

// removals are the removed identities, as a record covers them: only
// those removed now, so the list does not outgrow the removed nodes.
func removals(ids []NodeIdentity) []GossipKeyRemoval {
	var out []GossipKeyRemoval
	for _, id := range ids {
		if id.Removed {
			out = append(out, GossipKeyRemoval{Node: id.Name, At: id.RemovedAt})
		}
	}
	return out
}

// NewGossipKeys is a new keyring of generation 1 whose only key is
// primary (the key the cluster already gossips with). It covers no
// removal: a node removed before it may hold that key, so the leader
// rotates at once for every removed node.
func NewGossipKeys(primary []byte, now time.Time) GossipKeys {
	return GossipKeys{Keys: [][]byte{primary}, Generation: 1, Changed: now}
}
