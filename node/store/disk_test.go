package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// rawUpdate changes the file with bbolt directly, under the store.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// filled returns the path of a closed store holding n hosts.
func filled(t *testing.T, n int) string {
	t.Helper()
	path := dbPath(t)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx *Tx) error {
		for i := range n {
			tx.Put(fmt.Sprintf("labs/l/hosts/h%05d", i), []byte(fmt.Sprintf("host %05d", i)))
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantCorrupt checks that Open refuses path with a one-line *CorruptError
// that names the file, says what is wrong (about) and what to do.
func wantCorrupt(t *testing.T, path, about string) {
	t.Helper()
	s, err := Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a corrupt file succeeded")
	}
	t.Logf("Open: %v", err)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != path {
		t.Fatalf("Open = %v, want a *CorruptError for %s", err, path)
	}
	for _, want := range []string{path, about, "move it away; a member or follower re-syncs from the control plane"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q", want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Error("error is more than one line")
	}
}

func TestCorruptValueFlippedWithBbolt(t *testing.T) {
	path := filled(t, 100)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		k := []byte("labs/l/hosts/h00042")
		v := bytes.Clone(b.Get(k))
		v[len(v)-1] ^= 0x01 // "host 00042" -> "host 00043"
		return b.Put(k, v)
	})
	wantCorrupt(t, path, `record "labs/l/hosts/h00042": checksum`)
}

func TestCorruptRevisionAndMeta(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(tx *bolt.Tx) error
		about  string
	}{
		"revision flipped": {func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			k := []byte("labs/l/hosts/h00001")
			v := bytes.Clone(b.Get(k))
			v[7] ^= 0x04
			return b.Put(k, v)
		}, "checksum"},
		"record from the future": {func(tx *bolt.Tx) error {
			k := "labs/l/hosts/h00001"
			return tx.Bucket(bucketRecords).Put([]byte(k), encodeRecord(k, []byte("x"), 99))
		}, "after the store's 1"},
		"short record": {func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRecords).Put([]byte("k"), []byte{1, 2})
		}, "shorter than its header"},
		"meta flipped": {func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketMeta)
			v := bytes.Clone(b.Get(keyState))
			v[8] ^= 0x01
			return b.Put(keyState, v)
		}, "meta state: checksum"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filled(t, 10)
			rawUpdate(t, path, tc.change)
			wantCorrupt(t, path, tc.about)
		})
	}
}

// TestNewerFormat: a file of a newer format is refused as such, not as
// corrupt.
func TestNewerFormat(t *testing.T) {
	path := filled(t, 1)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		v := encodeState(1, 0)
		v[0] = 9
		v = append(v[:17], binaryCRC(v[:17])...)
		return tx.Bucket(bucketMeta).Put(keyState, v)
	})
	s, err := Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer format succeeded")
	}
	t.Logf("Open: %v", err)
	var ce *CorruptError
	if errors.As(err, &ce) || !strings.Contains(err.Error(), "format 9, this labd reads 2") || !strings.Contains(err.Error(), "newer labd") {
		t.Errorf("Open of a newer format = %v", err)
	}
}

func binaryCRC(b []byte) []byte {
	return binary.BigEndian.AppendUint32(nil, crc32c(b))
}

func TestCorruptFile(t *testing.T) {
	t.Run("not bbolt", func(t *testing.T) {
		path := dbPath(t)
		if err := os.WriteFile(path, bytes.Repeat([]byte("not a bbolt file "), 1000), 0o600); err != nil {
			t.Fatal(err)
		}
		wantCorrupt(t, path, "")
	})
	t.Run("damaged pages", func(t *testing.T) {
		path := filled(t, 2000)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// Overwrite the header (id, flags, count) of the leaf holding
		// host 1000.
		at := bytes.Index(b, []byte("labs/l/hosts/h01000"))
		if at < 0 {
			t.Fatal("host 1000 not found in the file")
		}
		page := os.Getpagesize()
		start := at / page * page
		for i := start; i < start+16; i++ {
			b[i] = 0xff
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		wantCorrupt(t, path, "")
	})
}

// TestFullDisk: a write past MaxSize fails as on a full disk: the error is
// returned, memory is as before, Err says so.
func TestFullDisk(t *testing.T) {
	var reported []error
	s, err := Open(dbPath(t), Options{MaxSize: 1 << 20, OnError: func(err error) { reported = append(reported, err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rev := put(t, s, "small", "x")
	if s.Err() != nil {
		t.Fatalf("Err of a healthy store: %v", s.Err())
	}
	before := all(s)
	ch, cancel := s.Subscribe()
	defer cancel()
	big := Batch{}
	for i := range 64 {
		big.Ops = append(big.Ops, Op{Key: fmt.Sprintf("big/%d", i), Value: make([]byte, 64<<10)})
	}
	for name, apply := range map[string]func() error{
		"Apply":        func() error { _, err := s.Apply(big); return err },
		"ApplyIndexed": func() error { _, err := s.ApplyIndexed(9, big); return err },
		"ApplyChange":  func() error { return s.ApplyChange(Change{Rev: rev + 1, Ops: big.Ops}) },
		"Restore": func() error {
			var recs []Record
			for _, op := range big.Ops {
				recs = append(recs, Record{Key: op.Key, Value: op.Value, Rev: 1})
			}
			return s.Restore(recs, 5, 5)
		},
	} {
		err := apply()
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, berrors.ErrMaxSizeReached) {
			t.Errorf("%s past MaxSize = %v, want ErrMaxSizeReached", name, err)
		}
		if diff := cmp.Diff(before, all(s)); diff != "" || s.Revision() != rev || s.AppliedIndex() != 0 {
			t.Errorf("%s: a failed write changed memory (revision %d, index %d) (-want +got):\n%s", name, s.Revision(), s.AppliedIndex(), diff)
		}
	}
	if signalled(ch) {
		t.Error("subscribers signalled for failed writes")
	}
	if s.Err() == nil || !errors.Is(s.Err(), berrors.ErrMaxSizeReached) || !strings.Contains(s.Err().Error(), s.Path()) {
		t.Errorf("Err = %v, want the first failure naming the file", s.Err())
	}
	if len(reported) != 4 {
		t.Errorf("OnError called %d times, want 4", len(reported))
	}
	// Smaller writes still go through; Err keeps the failure.
	if got := put(t, s, "small", "y"); got != rev+1 {
		t.Errorf("small write after the failure made revision %d", got)
	}
	if s.Err() == nil {
		t.Error("Err forgot the failure")
	}
}

// legacyEncode is the old store's record encoding (store.go before issue
// 12): stamp time (8 bytes), flags (1: deleted), origin length (2) and
// origin, then the value.
func legacyEncode(stamp uint64, origin string, deleted bool, value []byte) []byte {
	b := make([]byte, 0, 11+len(origin)+len(value))
	b = binary.BigEndian.AppendUint64(b, stamp)
	var flags byte
	if deleted {
		flags = 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(origin)))
	b = append(b, origin...)
	return append(b, value...)
}

func TestLegacy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("records"))
		if err != nil {
			return err
		}
		for _, r := range []struct {
			key     string
			deleted bool
			value   string
		}{
			{"labs/demo", false, "lab"},
			{"labs/demo/hosts/h1", false, "host"},
			{"labs/demo/hosts/gone", true, ""},
			{"labs/empty", false, ""},
		} {
			if err := b.Put([]byte(r.key), legacyEncode(0x0192_0000_0001_0002, "teacher", r.deleted, []byte(r.value))); err != nil {
				return err
			}
		}
		return nil
	})
	s, err := Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a legacy file succeeded")
	}
	t.Logf("Open: %v", err)
	if !errors.Is(err, ErrLegacy) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open of a legacy file = %v, want ErrLegacy naming the file", err)
	}
	got, err := ReadLegacy(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{{Key: "labs/demo", Value: []byte("lab")}, {Key: "labs/demo/hosts/h1", Value: []byte("host")}, {Key: "labs/empty", Value: []byte{}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadLegacy (-want +got):\n%s", diff)
	}
	// The file is untouched: reading again gives the same.
	if again, err := ReadLegacy(path); err != nil || !cmp.Equal(got, again) {
		t.Errorf("second ReadLegacy = %v, %v", again, err)
	}
	// A new file is not legacy.
	if _, err := ReadLegacy(filled(t, 1)); err == nil {
		t.Error("ReadLegacy of a new-format file: nil error")
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("records")).Put([]byte("bad"), []byte{1, 2, 3})
	})
	if _, err := ReadLegacy(path); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("ReadLegacy of a truncated record = %v", err)
	}
}

func TestReopenKeepsRecords(t *testing.T) {
	path := dbPath(t)
	s := openStore(t, path)
	put(t, s, "labs/demo", "lab", "labs/demo/hosts/h1", "host1", "labs/demo/hosts/h2", "host2", "empty", "")
	del(t, s, "labs/demo/hosts/h2")
	if _, err := s.ApplyIndexed(12, Batch{Ops: []Op{{Key: "i", Value: []byte("x")}}}); err != nil {
		t.Fatal(err)
	}
	before, rev := s.Snapshot()
	s = reopen(t, s)
	after, rev2 := s.Snapshot()
	if diff := cmp.Diff(before, after); diff != "" || rev != rev2 || s.AppliedIndex() != 12 {
		t.Errorf("after reopen: rev %d->%d index %d (-want +got):\n%s", rev, rev2, s.AppliedIndex(), diff)
	}
	if r, ok := s.Get("empty"); !ok || r.Value == nil || len(r.Value) != 0 {
		t.Errorf("empty value after reopen = %+v, %v", r, ok)
	}
}

// TestDamagedPageWhileOpen: a page damaged under an open store (here
// through the file, which bbolt maps) fails the write that meets it with a
// *CorruptError and sets Err; bbolt's panic does not reach the caller, and
// memory keeps the last good state.
func TestDamagedPageWhileOpen(t *testing.T) {
	path := filled(t, 2000)
	s := openStore(t, path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte("labs/l/hosts/h01000"))
	if at < 0 {
		t.Fatal("host 1000 not found in the file")
	}
	page := os.Getpagesize()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xff}, 16), int64(at/page*page)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rev := s.Revision()
	_, err = s.Apply(Batch{Ops: []Op{{Key: "labs/l/hosts/h01000", Value: []byte("new")}}})
	t.Logf("Apply: %v", err)
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("Apply over a damaged page = %v, want a *CorruptError", err)
	}
	if s.Err() == nil {
		t.Error("Err did not record the damage")
	}
	if r, ok := s.Get("labs/l/hosts/h01000"); !ok || string(r.Value) != "host 01000" || s.Revision() != rev {
		t.Errorf("memory changed by a failed write: %+v, %v, revision %d", r, ok, s.Revision())
	}
}
