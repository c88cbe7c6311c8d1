package lab

import "github.com/labnet-dev/labnet/node/store"

// The control plane's own records: which nodes an operator demoted from
// control node to member (labctl node demote), so that the leader does not
// add them back as voters when gossip still shows them running Raft.

// demotedPrefix holds one record per demoted node, keyed by its name.
const demotedPrefix = "control/demoted/"

// SetDemoted marks node demoted (true) or clears the mark (false) in tx.
func SetDemoted(tx *store.Tx, node string, demoted bool) {
	if demoted {
		tx.Put(demotedPrefix+node, []byte{1})
		return
	}
	tx.Delete(demotedPrefix + node)
}

// Demoted is the set of demoted nodes.
func Demoted(r Reader) map[string]bool {
	out := map[string]bool{}
	for _, rec := range r.List(demotedPrefix) {
		out[rec.Key[len(demotedPrefix):]] = true
	}
	return out
}

// DemotedAt is the revision at which node was demoted; ok is false when it
// is not.
func DemotedAt(r Reader, node string) (rev uint64, ok bool) {
	for _, rec := range r.List(demotedPrefix + node) {
		if rec.Key == demotedPrefix+node {
			return rec.Rev, true
		}
	}
	return 0, false
}
