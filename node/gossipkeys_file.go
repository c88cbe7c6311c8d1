package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
)

// gossipKeysFile, in the data directory, keeps the gossip keys this node
// last installed (CONTRACT14b): JSON {"keys":["base64",...]}, primary
// first, 0600, written atomically. A restarted node joins with them; a
// node enrolled with an invite gets its first ones from Enroll.
const gossipKeysFile = "gossip.keys"

// maxGossipKeysFile bounds what is read of the file.
const maxGossipKeysFile = 16 << 10

type gossipKeysJSON struct {
	Keys [][]byte `json:"keys"`
}

// parseGossipKeysFile decodes the file's bytes: exactly one object with
// "keys", each key 16, 24 or 32 bytes, none twice, at most
// lab.MaxGossipKeys. An empty list is valid (gossip not encrypted).
func parseGossipKeysFile(b []byte) ([][]byte, error) {
	if len(b) > maxGossipKeysFile {
		return nil, fmt.Errorf("%d bytes, over %d", len(b), maxGossipKeysFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f gossipKeysJSON
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the keys")
	}
	if len(f.Keys) > lab.MaxGossipKeys {
		return nil, fmt.Errorf("%d keys, over %d", len(f.Keys), lab.MaxGossipKeys)
	}
	if err := lab.ValidGossipKeys(f.Keys); err != nil {
		return nil, err
	}
	return f.Keys, nil
}

// loadGossipKeys reads DATA/gossip.keys; a missing file is no keys.
func loadGossipKeys(dataDir string) ([][]byte, error) {
	path := filepath.Join(dataDir, gossipKeysFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gossip keys: %w", err)
	}
	keys, err := parseGossipKeysFile(b)
	if err != nil {
		return nil, fmt.Errorf("gossip keys: %s: %w (delete it: a node with a certificate fetches the keys again)", path, err)
	}
	return keys, nil
}

// saveGossipKeys writes keys to DATA/gossip.keys, 0600, atomically (a
// temporary file, synced, renamed over the old one: auth.WriteSecretFile).
// No keys writes nothing.
func saveGossipKeys(dataDir string, keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	if err := lab.ValidGossipKeys(keys); err != nil {
		return fmt.Errorf("gossip keys: %w", err)
	}
	b, err := json.Marshal(gossipKeysJSON{Keys: keys})
	if err != nil {
		return fmt.Errorf("gossip keys: %w", err)
	}
	if err := auth.WriteSecretFile(filepath.Join(dataDir, gossipKeysFile), append(b, '\n')); err != nil {
		return fmt.Errorf("gossip keys: %w", err)
	}
	return nil
}
