package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labnet-dev/labnet/node/auth"
)

func TestGossipKeysFile(t *testing.T) {
	dir := t.TempDir()
	if keys, err := loadGossipKeys(dir); err != nil || keys != nil {
		t.Fatalf("no file: %x, %v", keys, err)
	}
	want := [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)}
	if err := saveGossipKeys(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadGossipKeys(dir)
	if err != nil || !sameKeys(got, want) {
		t.Fatalf("loaded %x, %v; want %x", got, err, want)
	}
	path := filepath.Join(dir, gossipKeysFile)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want 0600", path, fi, err)
	}
	b, _ := os.ReadFile(path)
	var f map[string][]string
	if err := json.Unmarshal(b, &f); err != nil || len(f["keys"]) != 2 || len(f) != 1 {
		t.Errorf("file %s: not {\"keys\":[base64...]}", b)
	}
	if err := saveGossipKeys(dir, [][]byte{{1, 2, 3}}); err == nil {
		t.Error("saved a 3-byte key")
	}
	for _, bad := range []string{"", "{}x", `{"keys":["AAAA"]}`, `{"keys":[],"more":1}`, `[1]`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadGossipKeys(dir); err == nil || !strings.Contains(err.Error(), gossipKeysFile) {
			t.Errorf("file %q: %v, want an error naming the file", bad, err)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, gossipKeysFile+".tmp*")); len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

func FuzzGossipKeysFile(f *testing.F) {
	f.Add([]byte(`{"keys":["` + strings.Repeat("A", 43) + `="]}`))
	f.Add([]byte(`{"keys":["AAAAAAAAAAAAAAAAAAAAAA==","` + strings.Repeat("B", 43) + `="]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseGossipKeysFile(b)
		if err != nil {
			return
		}
		dir := t.TempDir()
		if err := saveGossipKeys(dir, keys); err != nil {
			t.Fatalf("parsed keys cannot be saved: %v", err)
		}
		again, err := loadGossipKeys(dir)
		if err != nil || !sameKeys(again, keys) {
			t.Fatalf("round trip: %x, %v; want %x", again, err, keys)
		}
	})
}

// TestInitialGossipKeys: a CA holder off loopback without a cluster key
// makes the first key from the CA's (the same on every holder of that
// CA) and keeps it; loopback, --insecure and a node without the CA make
// none; kept keys win.
func TestInitialGossipKeys(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ca, _, err := auth.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := Config{DataDir: t.TempDir(), Gossip: "192.0.2.1:7946"}
	keys, err := initialGossipKeys(real, ca, log)
	if err != nil || len(keys) != 1 || len(keys[0]) != 32 {
		t.Fatalf("teacher off loopback: %x, %v; want one 32-byte key", keys, err)
	}
	if kept, _ := loadGossipKeys(real.DataDir); !sameKeys(kept, keys) {
		t.Errorf("kept %x, want %x", kept, keys)
	}
	other := Config{DataDir: t.TempDir(), Gossip: "192.0.2.2:7946"}
	if again, _ := initialGossipKeys(other, ca, log); !sameKeys(again, keys) {
		t.Errorf("another holder of the CA made %x, want %x", again, keys)
	}
	for name, cfg := range map[string]Config{
		"loopback":    {DataDir: t.TempDir(), Gossip: "127.0.0.1:7946"},
		"insecure":    {DataDir: t.TempDir(), Gossip: "192.0.2.1:7946", Insecure: true},
		"cluster key": {DataDir: t.TempDir(), Gossip: "192.0.2.1:7946", Key: []byte("k")},
	} {
		if got, err := initialGossipKeys(cfg, ca, log); err != nil || got != nil {
			t.Errorf("%s: %x, %v; want no key", name, got, err)
		}
	}
	if got, err := initialGossipKeys(Config{DataDir: t.TempDir(), Gossip: "192.0.2.1:7946"}, nil, log); err != nil || got != nil {
		t.Errorf("no CA: %x, %v; want no key", got, err)
	}
	mine := [][]byte{bytes.Repeat([]byte{7}, 32)}
	if err := saveGossipKeys(other.DataDir, mine); err != nil {
		t.Fatal(err)
	}
	if got, _ := initialGossipKeys(other, ca, log); !sameKeys(got, mine) {
		t.Errorf("kept keys: %x, want %x", got, mine)
	}
}
