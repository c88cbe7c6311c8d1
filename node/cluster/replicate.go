package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/labnet-dev/labnet/node/store"
)

// maxInbox bounds the bytes received and not yet merged. Past it, messages
// are dropped and counted: the next push/pull carries what they had.
const maxInbox = 64 << 20

// inbox hands received messages from memberlist's goroutines to the merger
// without blocking them.
type inbox struct {
	mu     sync.Mutex
	msgs   [][]byte
	size   int
	signal chan struct{}
}

// push queues b (taking ownership of it), or drops it when the inbox is
// full.
func (in *inbox) push(c *Cluster, b []byte) {
	in.mu.Lock()
	if in.size+len(b) > maxInbox {
		in.mu.Unlock()
		c.dropped.Add(1)
		return
	}
	in.msgs = append(in.msgs, b)
	in.size += len(b)
	in.mu.Unlock()
	select {
	case in.signal <- struct{}{}:
	default:
	}
}

// take returns and clears the queued messages.
func (in *inbox) take() [][]byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	msgs := in.msgs
	in.msgs, in.size = nil, 0
	return msgs
}

// runMerger decodes received messages and merges their records into the
// store, until ctx is done.
func (c *Cluster) runMerger(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.in.signal:
		}
		var recs []store.Record
		for _, msg := range c.in.take() {
			_, rs, err := decodeMessage(msg)
			if err != nil {
				c.log.Warn("dropping a bad gossip message", "len", len(msg), "err", err)
				continue
			}
			recs = append(recs, rs...)
		}
		if len(recs) == 0 {
			continue
		}
		// One Merge for everything that arrived together: one bbolt
		// transaction, and the store keeps the newest of repeated keys.
		keys, err := c.cfg.Store.Merge(recs)
		if err != nil {
			c.log.Warn("merging replicated records failed", "records", len(recs), "err", err)
			continue
		}
		if len(keys) > 0 {
			c.log.Debug("merged replicated records", "received", len(recs), "changed", len(keys))
		}
	}
}

// lastSent maps each key to the stamp last seen for it.
func lastSent(recs []store.Record) map[string]store.Stamp {
	m := make(map[string]store.Stamp, len(recs))
	for _, r := range recs {
		m[r.Key] = r.Stamp
	}
	return m
}

// runBroadcaster waits for the store's change signals, finds the records
// that changed since the last signal and broadcasts them, until ctx is
// done. Records learned from other nodes are relayed too (epidemic
// dissemination, as Serf relays its events): a writer's own broadcasts
// reach only a few random nodes per gossip round, and without relaying the
// rest would wait for push/pull (30s on the LAN preset). A record seen
// before is never relayed again, and named broadcasts replace older queued
// ones, so this converges instead of storming.
//
// The store's Subscribe says that something changed, not what, so each
// signal costs a walk of the replica (store.All) and a comparison with the
// stamps last seen. That is fine for a lab's few thousand records; a change
// feed in node/store would make it proportional to the change.
func (c *Cluster) runBroadcaster(ctx context.Context, changes <-chan struct{}, sent map[string]store.Stamp) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
		all := c.cfg.Store.All()
		seen := make(map[string]struct{}, len(all))
		for _, r := range all {
			seen[r.Key] = struct{}{}
			if old, ok := sent[r.Key]; ok && old == r.Stamp {
				continue
			}
			sent[r.Key] = r.Stamp
			c.broadcast(r, r.Stamp.Origin == c.cfg.Name)
		}
		for k := range sent {
			if _, ok := seen[k]; !ok {
				delete(sent, k) // a collected tombstone
			}
		}
	}
}

// broadcast sends r to the other nodes: as a named broadcast piggybacked on
// gossip when it fits in a UDP packet, otherwise over TCP to each live node.
// Large records of other nodes are left to push/pull.
func (c *Cluster) broadcast(r store.Record, own bool) {
	if err := checkRecord(r); err != nil {
		c.log.Warn("record not replicated", "err", err)
		return
	}
	msg := encodeMessage(kindRecords, []store.Record{r})
	if len(msg) <= c.maxBroadcast {
		c.queue.QueueBroadcast(&namedBroadcast{name: "rec:" + r.Key, msg: msg})
		return
	}
	if !own {
		return
	}
	ml := c.ml.Load()
	for _, n := range ml.Members() {
		if n.Name == c.cfg.Name {
			continue
		}
		if err := ml.SendReliable(n, msg); err != nil {
			c.log.Debug("large record not sent; push/pull will carry it", "key", r.Key, "node", n.Name, "err", err)
		}
	}
}

// A leave announcement is kindLeave | name length (uvarint) | name.
const kindLeave byte = 3

func encodeLeave(name string) []byte {
	b := []byte{kindLeave}
	b = binary.AppendUvarint(b, uint64(len(name)))
	return append(b, name...)
}

func decodeLeave(b []byte) (string, error) {
	if len(b) < 1 || b[0] != kindLeave {
		return "", fmt.Errorf("%w: not a leave announcement", ErrMalformed)
	}
	d := decoder{b: b[1:]}
	name := d.bytes("name", MaxOriginLen)
	if d.err == nil && (len(name) == 0 || len(d.b) != 0) {
		d.err = fmt.Errorf("%w: leave announcement", ErrMalformed)
	}
	if d.err != nil {
		return "", d.err
	}
	return string(name), nil
}
