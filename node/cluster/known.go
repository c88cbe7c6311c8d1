package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// knownNodes is the control nodes this node has seen: name and gossip
// address, with when each was last seen alive. It is kept in
// Config.KnownFile so that a labd restarted while the control plane is away
// still knows where to find it. A node seen alive as a member (demoted) is
// dropped; beyond maxKnown entries, the least recently seen go.
//
// saw is called from membership callbacks (no I/O there); the rejoin loop
// and Shutdown write the file when something changed.
type knownNodes struct {
	path string
	self string

	mu      sync.Mutex
	control map[string]knownNode
	dirty   bool
}

type knownNode struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	// API is the node's API address (NodeMeta.APIAddr), where a node
	// whose gossip keys are stale asks for the current ones.
	API  string `json:"api,omitempty"`
	Seen int64  `json:"seen"` // Unix seconds
}

// knownFile is the file's format.
type knownFile struct {
	Version int         `json:"version"`
	Control []knownNode `json:"control"`
}

const (
	knownVersion = 1
	maxKnown     = 32
	maxKnownFile = 64 << 10
)

// loadKnown reads path (empty: nothing is kept). A missing file is an empty
// set; a file that cannot be read or parsed is an error naming it.
func loadKnown(path, self string) (*knownNodes, error) {
	k := &knownNodes{path: path, self: self, control: map[string]knownNode{}}
	if path == "" {
		return k, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("known nodes: %w", err)
	}
	if len(b) > maxKnownFile {
		return nil, fmt.Errorf("known nodes: %s is %d bytes, over %d: delete it, it is rebuilt as control nodes are seen", path, len(b), maxKnownFile)
	}
	var f knownFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("known nodes: %s: %w: delete it, it is rebuilt as control nodes are seen", path, err)
	}
	if f.Version != knownVersion {
		return nil, fmt.Errorf("known nodes: %s: unknown version %d: delete it, it is rebuilt as control nodes are seen", path, f.Version)
	}
	for _, n := range f.Control {
		if n.Name == "" || n.Name == self || n.Addr == "" {
			continue
		}
		k.control[n.Name] = n
	}
	return k, nil
}

// saw records m, a member just seen alive: a control node is kept (with its
// current address), a member is dropped.
func (k *knownNodes) saw(m *Member) {
	if m.Name == k.self || m.Addr == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old, ok := k.control[m.Name]
	if m.Meta.Role != RoleControl {
		if ok {
			delete(k.control, m.Name)
			k.dirty = true
		}
		return
	}
	now := time.Now().Unix()
	if !ok || old.Addr != m.Addr || old.API != m.Meta.APIAddr || now-old.Seen > 60 {
		k.control[m.Name] = knownNode{Name: m.Name, Addr: m.Addr, API: m.Meta.APIAddr, Seen: now}
		k.dirty = true
	}
	for len(k.control) > maxKnown {
		oldest := ""
		for name, n := range k.control {
			if oldest == "" || n.Seen < k.control[oldest].Seen {
				oldest = name
			}
		}
		delete(k.control, oldest)
	}
}

// controls returns the known control nodes, sorted by name.
func (k *knownNodes) controls() []knownNode {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]knownNode, 0, len(k.control))
	for _, n := range k.control {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b knownNode) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// save writes the file if something changed since the last save: to a
// temporary file, synced, then renamed over the old one.
func (k *knownNodes) save() error {
	if k.path == "" {
		return nil
	}
	k.mu.Lock()
	if !k.dirty {
		k.mu.Unlock()
		return nil
	}
	k.dirty = false
	k.mu.Unlock()
	f := knownFile{Version: knownVersion, Control: k.controls()}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("known nodes: %w", err)
	}
	if err := writeFileAtomic(k.path, append(b, '\n')); err != nil {
		k.mu.Lock()
		k.dirty = true
		k.mu.Unlock()
		return fmt.Errorf("known nodes: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// saveKnown writes the known nodes' file when it changed; a failure is
// logged and tried again later (the file only helps after a restart).
func (c *Cluster) saveKnown() {
	if err := c.known.save(); err != nil {
		c.log.Warn("saving the known control nodes", "err", err)
	}
}

// ControlAPIs are the API addresses of the control nodes this node knows
// (other than itself): those gossip shows alive first, then those kept in
// Config.KnownFile, without duplicates. A node whose gossip keys are stale
// cannot hear gossip, and asks them for the current keys.
func (c *Cluster) ControlAPIs() []string {
	seen := map[string]bool{}
	var out []string
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, m := range c.Members() {
		if m.Name != c.cfg.Name && m.State == StateAlive && m.Meta.Role == RoleControl {
			add(m.Meta.APIAddr)
		}
	}
	for _, k := range c.known.controls() {
		add(k.API)
	}
	return out
}
