package follow

import (
	"fmt"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// snapshotChunk is how many records one snapshot message carries: with
// records of a few hundred bytes, well under gRPC's 4 MiB message limit.
const snapshotChunk = 1000

// snapshotMessages splits recs at rev into chunks; the last one has last
// set. An empty state is one empty chunk.
func snapshotMessages(recs []Record, rev uint64, chunk int) []*labv1.FollowResponse {
	var out []*labv1.FollowResponse
	for i := 0; i == 0 || i < len(recs); i += chunk {
		end := min(i+chunk, len(recs))
		s := &labv1.StateSnapshot{Revision: rev, Last: end == len(recs), Records: make([]*labv1.StateRecord, 0, end-i)}
		for _, r := range recs[i:end] {
			s.Records = append(s.Records, &labv1.StateRecord{Key: r.Key, Value: r.Value, Revision: r.Rev})
		}
		out = append(out, &labv1.FollowResponse{Event: &labv1.FollowResponse_Snapshot{Snapshot: s}})
	}
	return out
}

func changeMessage(c Change) *labv1.FollowResponse {
	m := &labv1.StateChange{Revision: c.Rev, Ops: make([]*labv1.StateOp, 0, len(c.Ops))}
	for _, op := range c.Ops {
		m.Ops = append(m.Ops, &labv1.StateOp{Key: op.Key, Value: op.Value, Delete: op.Value == nil})
	}
	return &labv1.FollowResponse{Event: &labv1.FollowResponse_Change{Change: m}}
}

// decodeChange checks and converts a change from the control node.
func decodeChange(m *labv1.StateChange) (Change, error) {
	if m.GetRevision() == 0 {
		return Change{}, fmt.Errorf("change without a revision")
	}
	c := Change{Rev: m.GetRevision(), Ops: make([]Op, 0, len(m.GetOps()))}
	for i, op := range m.GetOps() {
		if op.GetKey() == "" {
			return Change{}, fmt.Errorf("change %d: op %d has no key", c.Rev, i)
		}
		o := Op{Key: op.GetKey()}
		if !op.GetDelete() {
			o.Value = op.GetValue()
			if o.Value == nil {
				o.Value = []byte{} // an empty value is a put, not a delete
			}
		}
		c.Ops = append(c.Ops, o)
	}
	return c, nil
}

// snapshotBuilder collects the chunks of one snapshot.
type snapshotBuilder struct {
	rev     uint64
	recs    []Record
	started bool
}

// add takes one chunk; done is true once the last chunk is in.
func (b *snapshotBuilder) add(m *labv1.StateSnapshot) (done bool, err error) {
	if !b.started {
		b.started, b.rev, b.recs = true, m.GetRevision(), b.recs[:0]
	} else if m.GetRevision() != b.rev {
		return false, fmt.Errorf("snapshot chunk at revision %d inside a snapshot at %d", m.GetRevision(), b.rev)
	}
	for _, r := range m.GetRecords() {
		if r.GetKey() == "" {
			return false, fmt.Errorf("snapshot at revision %d: a record has no key", b.rev)
		}
		if n := len(b.recs); n > 0 && b.recs[n-1].Key >= r.GetKey() {
			return false, fmt.Errorf("snapshot at revision %d: key %q out of order", b.rev, r.GetKey())
		}
		if r.GetRevision() > b.rev {
			return false, fmt.Errorf("snapshot at revision %d: key %q at later revision %d", b.rev, r.GetKey(), r.GetRevision())
		}
		v := r.GetValue()
		if v == nil {
			v = []byte{}
		}
		b.recs = append(b.recs, Record{Key: r.GetKey(), Value: v, Rev: r.GetRevision()})
	}
	if m.GetLast() {
		b.started = false
		return true, nil
	}
	return false, nil
}
