package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/labnet-dev/labnet/node/control"
	"github.com/labnet-dev/labnet/node/store"
)

// legacyImport is a state file of the old format (before revisions),
// moved aside to DATA/state.v1.db, whose live records a control node
// proposes through raft once it leads: imported that way they reach every
// control node, in the log and in snapshots. A marker file beside it says
// the import is done, so it happens once.
type legacyImport struct {
	path   string // state.v1.db
	what   string // for the log: "the old state format"
	marker string // state.v1.db.imported; "" for none
	recs   []store.Record
}

// openControlState opens a control node's DATA/state.db. A file of the old
// format is moved to state.v1.db and a new, empty state opened: the
// control plane fills it from raft, and imports the old records when this
// node leads (legacyImport).
// onError is the store's Options.OnError.
func openControlState(dataDir string, onError func(error)) (*store.Store, *legacyImport, error) {
	path := filepath.Join(dataDir, "state.db")
	old := filepath.Join(dataDir, "state.v1.db")
	st, err := store.Open(path, store.Options{OnError: onError})
	if errors.Is(err, store.ErrLegacy) {
		if _, serr := os.Stat(old); serr == nil {
			return nil, nil, fmt.Errorf("state: %s is of the old format and %s exists already: move one of them away", path, old)
		}
		if err := os.Rename(path, old); err != nil {
			return nil, nil, fmt.Errorf("state: move the old format aside: %w", err)
		}
		st, err = store.Open(path, store.Options{OnError: onError})
	}
	if err != nil {
		return nil, nil, err
	}
	li := &legacyImport{path: old, what: "the old state format", marker: old + ".imported"}
	if _, err := os.Stat(old); err != nil {
		return st, nil, nil // nothing was ever moved aside
	}
	if _, err := os.Stat(li.marker); err == nil {
		return st, nil, nil // imported already
	}
	if li.recs, err = store.ReadLegacy(old); err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("state: read %s: %w", old, err)
	}
	return st, li, nil
}

// errNotEmpty stops an import into a state that holds records already.
var errNotEmpty = errors.New("the control plane's state is not empty")

// propose writes the old records in one batch through raft, only if the
// state is still empty (a node that joined a running control plane must
// not overwrite it), and marks the import done. It returns how many
// records it imported, -1 when the state was not empty.
func (l *legacyImport) propose(ctx context.Context, ctl *control.Control) (int, error) {
	_, err := ctl.Update(ctx, func(tx *store.Tx) error {
		if len(tx.List("")) > 0 {
			return errNotEmpty
		}
		for _, r := range l.recs {
			tx.Put(r.Key, r.Value)
		}
		return nil
	})
	n := len(l.recs)
	if errors.Is(err, errNotEmpty) {
		n, err = -1, nil
	}
	if err != nil {
		return 0, err
	}
	if l.marker == "" {
		return n, nil
	}
	if err := os.WriteFile(l.marker, nil, 0o600); err != nil {
		return n, fmt.Errorf("mark the import done: %w", err)
	}
	return n, nil
}
