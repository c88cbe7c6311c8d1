package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/labnet-dev/labnet/node/store"
)

// The gossip keyring (docs/security.md, "members that are not trusted"):
// the keys memberlist encrypts gossip with, kept in the control plane's
// state so that every node installs them from its replica, and the leader
// rotates them when a node is removed. One record, "control/gossipkeys".
const gossipKeysKey = "control/gossipkeys"

// Limits on the keyring: memberlist's AES key sizes, and a bound on how
// many keys (a rotation adds one, the drop after its grace leaves one) and
// covered removals a record may hold, so that a hostile record is
// refused rather than installed.
const (
	MaxGossipKeys     = 16
	maxGossipKeysSize = 64 << 10
)

// GossipKeys is the gossip keyring.
type GossipKeys struct {
	// Keys are memberlist AES keys (16, 24 or 32 bytes; generated keys
	// are 32), primary first: the primary encrypts, every key decrypts.
	Keys [][]byte `json:"keys"`
	// Generation counts the record's changes (1 for a new keyring).
	Generation uint64 `json:"generation"`
	// Changed is when the keys last changed (the leader's clock): the
	// graces of a rotation count from it.
	Changed time.Time `json:"changed"`
	// Pending says the last key is new: every node installs it for
	// decryption first, and the leader makes it primary after a grace,
	// so that no node hears gossip it cannot decrypt yet.
	Pending bool `json:"pending,omitempty"`
	// Covered are the removals the keys were rotated for (node and the
	// identity's RemovedAt): a removed identity not listed here is one the
	// leader has still to rotate for.
	Covered []GossipKeyRemoval `json:"covered,omitempty"`
}

// GossipKeyRemoval is one node removal a rotation covered.
type GossipKeyRemoval struct {
	Node string    `json:"node"`
	At   time.Time `json:"at"`
}

// Primary is the key gossip is encrypted with; nil for an empty keyring.
func (k GossipKeys) Primary() []byte {
	if len(k.Keys) == 0 {
		return nil
	}
	return k.Keys[0]
}

// Validate checks the keyring: one to MaxGossipKeys keys, each 16, 24 or
// 32 bytes, no key twice.
func (k GossipKeys) Validate() error {
	if len(k.Keys) == 0 {
		return errors.New("gossip keys: no key")
	}
	if len(k.Keys) > MaxGossipKeys {
		return fmt.Errorf("gossip keys: %d keys, over the limit of %d", len(k.Keys), MaxGossipKeys)
	}
	if k.Pending && len(k.Keys) < 2 {
		return errors.New("gossip keys: a pending key needs a primary beside it")
	}
	return ValidGossipKeys(k.Keys)
}

// ValidGossipKeys checks a list of gossip keys (primary first): each 16,
// 24 or 32 bytes (AES-128, -192 or -256, as memberlist takes them), no key
// twice. An empty list is valid (gossip not encrypted).
func ValidGossipKeys(keys [][]byte) error {
	for i, key := range keys {
		switch len(key) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("gossip key %d: %d bytes; a key is 16, 24 or 32 bytes", i, len(key))
		}
		for _, other := range keys[:i] {
			if bytes.Equal(key, other) {
				return fmt.Errorf("gossip key %d: listed twice", i)
			}
		}
	}
	return nil
}

// ParseGossipKeys decodes a keyring record, refusing one that is too big,
// not JSON of this form, or whose keys Validate refuses.
func ParseGossipKeys(b []byte) (GossipKeys, error) {
	if len(b) > maxGossipKeysSize {
		return GossipKeys{}, fmt.Errorf("gossip keys: record of %d bytes, over %d", len(b), maxGossipKeysSize)
	}
	var k GossipKeys
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return GossipKeys{}, fmt.Errorf("gossip keys: %w", err)
	}
	if dec.More() {
		return GossipKeys{}, errors.New("gossip keys: data after the record")
	}
	if err := k.Validate(); err != nil {
		return GossipKeys{}, err
	}
	return k, nil
}

// PutGossipKeys writes the keyring.
func PutGossipKeys(tx *store.Tx, k GossipKeys) error {
	if err := k.Validate(); err != nil {
		return fmt.Errorf("put %w", err)
	}
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	tx.Put(gossipKeysKey, b)
	return nil
}

// GetGossipKeys reads the keyring; ok is false when the state has none
// (gossip is not encrypted, or the leader has not made it yet) or the
// record is unusable.
func GetGossipKeys(g Getter) (k GossipKeys, ok bool) {
	v, ok := g.Get(gossipKeysKey)
	if !ok {
		return GossipKeys{}, false
	}
	k, err := ParseGossipKeys(v)
	return k, err == nil
}

// GossipKeysRaw is the keyring record's bytes, for telling whether it
// changed; nil when there is none.
func GossipKeysRaw(g Getter) []byte {
	v, _ := g.Get(gossipKeysKey)
	return v
}
