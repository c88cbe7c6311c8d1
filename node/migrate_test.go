package node

import (
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/labnet-dev/labnet/node/store"
)

// writeV1 writes a state.db as labd wrote it before revisions (records
// stamped with a hybrid logical clock, deletes kept as tombstones; the
// encoding of node/store before issue 12).
func writeV1(t *testing.T, path string, recs map[string]string, tombstones ...string) {
	t.Helper()
	enc := func(deleted bool, value string) []byte {
		b := binary.BigEndian.AppendUint64(nil, 0x0192_0000_0001_0002)
		var flags byte
		if deleted {
			flags = 1
		}
		b = append(b, flags)
		b = binary.BigEndian.AppendUint16(b, uint16(len("teacher")))
		b = append(b, "teacher"...)
		return append(b, value...)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("records"))
		if err != nil {
			return err
		}
		for k, v := range recs {
			if err := b.Put([]byte(k), enc(false, v)); err != nil {
				return err
			}
		}
		for _, k := range tombstones {
			if err := b.Put([]byte(k), enc(true, "")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenStateImportsV1(t *testing.T) {
	dir := t.TempDir()
	want := map[string]string{"labs/demo": "lab", "labs/demo/hosts/h1": "host"}
	writeV1(t, filepath.Join(dir, "state.db"), want, "labs/demo/hosts/gone")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	values := func(st *store.Store) map[string]string {
		out := map[string]string{}
		for _, r := range st.List("") {
			out[r.Key] = string(r.Value)
		}
		return out
	}
	st, err := openState(dir, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, values(st)); diff != "" {
		t.Errorf("imported state (-want +got):\n%s", diff)
	}
	st.Close()
	if _, err := os.Stat(filepath.Join(dir, "state.v1.db")); err != nil {
		t.Errorf("the old file was not kept aside: %v", err)
	}
	// Once: the next start opens the new file as it is.
	st, err = openState(dir, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, values(st)); diff != "" || st.Revision() != 1 {
		t.Errorf("state at the second start, revision %d (-want +got):\n%s", st.Revision(), diff)
	}
	st.Close()
}

// TestOpenStateFinishesImport: an import interrupted between its renames
// is completed at the next start; one interrupted before is run again.
func TestOpenStateFinishesImport(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	want := map[string]string{"labs/demo": "lab"}

	// Stopped after the import and the first rename.
	dir := t.TempDir()
	writeV1(t, filepath.Join(dir, "state.db"), want)
	if _, err := importLegacy(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "state.db"), filepath.Join(dir, "state.db.new")); err != nil {
		t.Fatal(err)
	}
	st, err := openState(dir, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := st.Get("labs/demo"); !ok || string(r.Value) != "lab" {
		t.Errorf("after finishing the renames: labs/demo = %+v, %v", r, ok)
	}
	st.Close()

	// Stopped while writing state.db.new: it goes, the import runs again.
	dir = t.TempDir()
	writeV1(t, filepath.Join(dir, "state.db"), want)
	if err := os.WriteFile(filepath.Join(dir, "state.db.new"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err = openState(dir, log, nil); err != nil {
		t.Fatal(err)
	}
	if r, ok := st.Get("labs/demo"); !ok || string(r.Value) != "lab" {
		t.Errorf("after an interrupted import: labs/demo = %+v, %v", r, ok)
	}
	st.Close()
}
