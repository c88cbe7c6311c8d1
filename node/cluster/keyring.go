package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/memberlist"
)

// Gossip keys (docs/security.md): memberlist encrypts every message with
// the primary key of its keyring and decrypts with any of them, so keys
// change while the cluster runs: a new key is installed everywhere, then
// made primary, then the old ones are removed (node/lab's rotation). The
// keyring always exists, empty when gossip is not encrypted (loopback
// development); memberlist checks it for every message, so installing the
// first key turns encryption on.

// newKeyring is the keyring New gives memberlist: Config.Keys, then the
// cluster key's (Config.Key) when it is not among them.
func newKeyring(cfg Config) (*memberlist.Keyring, error) {
	keys := slices.Clone(cfg.Keys)
	if len(cfg.Key) > 0 {
		if k := gossipKey(cfg.Key); !slices.ContainsFunc(keys, func(x []byte) bool { return bytes.Equal(x, k) }) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return memberlist.NewKeyring(nil, nil)
	}
	for i, k := range keys {
		if err := memberlist.ValidateKey(k); err != nil {
			return nil, fmt.Errorf("gossip key %d: %w", i, err)
		}
	}
	return memberlist.NewKeyring(keys[1:], keys[0])
}

// KeyOf is the gossip key of a cluster key (Config.Key): a key of 16, 24
// or 32 bytes as is, anything else hashed with SHA-256.
func KeyOf(clusterKey []byte) []byte { return gossipKey(clusterKey) }

// SetKeys makes keys (primary first) the gossip keyring: it adds the new
// ones, makes keys[0] primary and removes the others. Calling it again
// with the same keys changes nothing. Gossip cannot be turned back to
// plaintext: an empty list is refused while keys are installed.
//
// It works before Start (what Start will use) and while gossiping.
func (c *Cluster) SetKeys(keys [][]byte) error {
	ring := c.mlConf.Keyring
	if len(keys) == 0 {
		if len(ring.GetKeys()) > 0 {
			return errors.New("cluster: set gossip keys: gossip is encrypted and cannot be turned off")
		}
		return nil
	}
	for i, k := range keys {
		if err := memberlist.ValidateKey(k); err != nil {
			return fmt.Errorf("cluster: set gossip keys: key %d: %w", i, err)
		}
	}
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	for _, k := range keys {
		if err := ring.AddKey(slices.Clone(k)); err != nil {
			return fmt.Errorf("cluster: set gossip keys: %w", err)
		}
	}
	if err := ring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("cluster: set gossip keys: %w", err)
	}
	return removeKeys(ring, keys)
}

// removeKeys removes from ring the keys not in keep. memberlist's
// RemoveKey shifts the keys after the one removed in place, under the
// feet of a message being decrypted with the list it just read; removing
// from the end never moves a key. A kept key found after one to remove
// is taken out and put back (its messages may fail to decrypt for that
// moment; gossip sends them again).
func removeKeys(ring *memberlist.Keyring, keep [][]byte) error {
	wanted := func(k []byte) bool {
		return slices.ContainsFunc(keep, func(x []byte) bool { return bytes.Equal(x, k) })
	}
	var readd [][]byte
	for {
		have := ring.GetKeys()
		last := -1
		for i, k := range have {
			if !wanted(k) {
				last = i
			}
		}
		if last < 0 {
			break
		}
		for i := len(have) - 1; i > last; i-- {
			readd = append(readd, have[i])
			if err := ring.RemoveKey(have[i]); err != nil {
				return fmt.Errorf("cluster: set gossip keys: %w", err)
			}
		}
		if err := ring.RemoveKey(have[last]); err != nil {
			return fmt.Errorf("cluster: set gossip keys: %w", err)
		}
	}
	for _, k := range readd {
		if err := ring.AddKey(k); err != nil {
			return fmt.Errorf("cluster: set gossip keys: %w", err)
		}
	}
	return nil
}

// Keys returns the gossip keys installed, primary first (copies); none
// when gossip is not encrypted.
func (c *Cluster) Keys() [][]byte {
	var out [][]byte
	for _, k := range c.mlConf.Keyring.GetKeys() {
		out = append(out, slices.Clone(k))
	}
	return out
}

// Encrypted reports whether gossip is encrypted (some key is installed).
func (c *Cluster) Encrypted() bool { return len(c.mlConf.Keyring.GetKeys()) > 0 }
