package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/labnet-dev/labnet/node/store"
)

// openState opens the desired state in DATA/state.db. A file from a labd
// before revisions (store.ErrLegacy) is moved aside to state.v1.db and its
// records imported into a new state.db, once, and said so.
//
// The import is one local batch: on a single labd that is the whole story.
// With a control plane the records go through Raft instead (the control
// plane's own import); a moved-aside file is never read again here.
// onError is the store's Options.OnError.
func openState(dataDir string, log *slog.Logger, onError func(error)) (*store.Store, error) {
	path := filepath.Join(dataDir, "state.db")
	if err := finishImport(dataDir); err != nil {
		return nil, err
	}
	opts := store.Options{OnError: onError}
	st, err := store.Open(path, opts)
	if !errors.Is(err, store.ErrLegacy) {
		return st, err
	}
	n, err := importLegacy(dataDir)
	if err != nil {
		return nil, fmt.Errorf("state: import the old format of %s: %w", path, err)
	}
	log.Info("imported the state of an older labd", "records", n, "from", filepath.Join(dataDir, "state.v1.db"), "into", path)
	return store.Open(path, opts)
}

// importLegacy writes state.db's records into state.db.new (fsynced), then
// moves state.db to state.v1.db and state.db.new to state.db. A crash at
// any point leaves either the old file in place (the import runs again) or
// the new one complete (finishImport completes the renames).
func importLegacy(dataDir string) (int, error) {
	path, next, old := filepath.Join(dataDir, "state.db"), filepath.Join(dataDir, "state.db.new"), filepath.Join(dataDir, "state.v1.db")
	if _, err := os.Stat(old); err == nil {
		return 0, fmt.Errorf("%s exists already: move one of them away", old)
	}
	recs, err := store.ReadLegacy(path)
	if err != nil {
		return 0, err
	}
	st, err := store.Open(next, store.Options{})
	if err != nil {
		return 0, err
	}
	b := store.Batch{Ops: make([]store.Op, len(recs))}
	for i, r := range recs {
		b.Ops[i] = store.Op{Key: r.Key, Value: r.Value}
	}
	_, err = st.Apply(b)
	if err = errors.Join(err, st.Close()); err != nil {
		os.Remove(next)
		return 0, err
	}
	if err := os.Rename(path, old); err != nil {
		return 0, err
	}
	return len(recs), os.Rename(next, path)
}

// finishImport completes an import that stopped between its renames, and
// removes what an import that stopped earlier left.
func finishImport(dataDir string) error {
	path, next, old := filepath.Join(dataDir, "state.db"), filepath.Join(dataDir, "state.db.new"), filepath.Join(dataDir, "state.v1.db")
	if _, err := os.Stat(next); err != nil {
		return nil
	}
	_, errPath := os.Stat(path)
	_, errOld := os.Stat(old)
	if errors.Is(errPath, os.ErrNotExist) && errOld == nil {
		return os.Rename(next, path)
	}
	return os.Remove(next)
}
