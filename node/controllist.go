package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/follow"
)

// controlListFile, in the data directory, keeps the control nodes a member
// last knew, so that it can reach the control plane after a restart even
// when gossip has not found them (its --join node is gone, or gossip is
// cut while the API is not).
const controlListFile = "control-nodes.json"

// controlList is the candidates a member's follower tries: the control
// nodes gossip shows alive now, then those it knew last (persisted).
type controlList struct {
	path   string
	gossip func() []follow.Candidate
	log    *slog.Logger

	mu    sync.Mutex
	saved []follow.Candidate
}

// openControlList loads the persisted list; a missing file is an empty
// list, and an unreadable one is too (with a warning): gossip refills it.
func openControlList(dataDir string, gossip func() []follow.Candidate, log *slog.Logger) *controlList {
	l := &controlList{path: filepath.Join(dataDir, controlListFile), gossip: gossip, log: log}
	b, err := os.ReadFile(l.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		log.Warn("reading the last known control nodes", "err", err)
	default:
		if err := json.Unmarshal(b, &l.saved); err != nil {
			log.Warn("the last known control nodes are unreadable: ignored", "path", l.path, "err", err)
			l.saved = nil
		}
	}
	return l
}

// candidates is gossip's control nodes, then the saved ones gossip does
// not list. A changed, non-empty gossip list is saved first.
func (l *controlList) candidates() []follow.Candidate {
	now := l.gossip()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(now) > 0 && !slices.Equal(now, l.saved) {
		if err := l.save(now); err != nil {
			l.log.Warn("saving the known control nodes", "err", err)
		} else {
			l.saved = slices.Clone(now)
		}
	}
	out := slices.Clone(now)
	for _, c := range l.saved {
		if !slices.ContainsFunc(out, func(o follow.Candidate) bool { return o.Name == c.Name }) {
			out = append(out, c)
		}
	}
	return out
}

// save writes list atomically (a new file renamed over the old one).
func (l *controlList) save(list []follow.Candidate) error {
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// gossipControls lists the alive members but self whose gossip metadata
// says they are control nodes (isControl reads the metadata's role field),
// sorted by name so the list only changes when the control nodes do.
func gossipControls(cl *cluster.Cluster, self string, isControl func(cluster.NodeMeta) bool) func() []follow.Candidate {
	return func() []follow.Candidate {
		var out []follow.Candidate
		for _, m := range cl.Members() {
			if m.Name != self && m.State == cluster.StateAlive && m.Meta.APIAddr != "" && isControl(m.Meta) {
				out = append(out, follow.Candidate{Name: m.Name, Addr: m.Meta.APIAddr})
			}
		}
		slices.SortFunc(out, func(a, b follow.Candidate) int {
			if a.Name < b.Name {
				return -1
			}
			if a.Name > b.Name {
				return 1
			}
			return 0
		})
		return out
	}
}
