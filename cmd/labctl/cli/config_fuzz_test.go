package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadConfig: a config file edited by hand, or damaged, is an error
// naming the file, never a panic; what reads back writes back.
func FuzzReadConfig(f *testing.F) {
	f.Add([]byte("current-context: a\ncontexts:\n- name: a\n  server: 127.0.0.1:7700\n  token: lnt_x_y\n"))
	f.Add([]byte("contexts: [{name: a}, {name: a}]\n"))
	f.Add([]byte("contexts: [~]\n"))
	f.Add([]byte("current-context: [1]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "config")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := readConfig(path)
		if err != nil {
			return
		}
		_ = cfg.Current()
		if err := writeConfig(path, cfg); err != nil {
			t.Fatalf("writing back what was read: %v", err)
		}
		if _, _, err := readConfig(path); err != nil {
			t.Fatalf("reading back what was written: %v", err)
		}
	})
}

// FuzzLoginInputs: --ca-hash and --ttl values are checked, never a panic.
func FuzzLoginInputs(f *testing.F) {
	f.Add("sha256:"+"ab", "30d")
	f.Add("SHA256:0000000000000000000000000000000000000000000000000000000000000000", "1h30m")
	f.Add("", "99999999999w")
	f.Fuzz(func(t *testing.T, hash, ttl string) {
		if h, err := checkCAHash(hash); err == nil && len(h) != len(caHashPrefix)+64 {
			t.Errorf("checkCAHash(%q) = %q", hash, h)
		}
		if d, err := parseTTL(ttl); err == nil && d <= 0 {
			t.Errorf("parseTTL(%q) = %v", ttl, d)
		}
	})
}
