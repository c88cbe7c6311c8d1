package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ReadLegacy returns the live records of a store file in the old format
// (bucket "records", each value stamped with a hybrid logical clock and its
// writer, deletes kept as tombstones), sorted by key, with Rev 0, for
// importing them into a new store. The file is opened read-only.
func ReadLegacy(path string) ([]Record, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: read legacy %s: %w", path, err)
	}
	defer db.Close()
	var out []Record
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		if b == nil {
			return errors.New("no records bucket")
		}
		if tx.Bucket(bucketMeta) != nil {
			return errors.New("not the old format (it has a meta bucket)")
		}
		return b.ForEach(func(k, v []byte) error {
			r, live, err := decodeLegacy(string(k), v)
			if err != nil {
				return err
			}
			if live {
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: read legacy %s: %w", path, err)
	}
	sortRecords(out)
	return out, nil
}

// decodeLegacy decodes an old record: stamp time (8 bytes), flags (1; bit
// 0: deleted), origin length (2) and origin, then the value.
func decodeLegacy(key string, b []byte) (r Record, live bool, err error) {
	if len(b) < 11 {
		return Record{}, false, fmt.Errorf("record %q: truncated", key)
	}
	n := int(binary.BigEndian.Uint16(b[9:]))
	if len(b) < 11+n {
		return Record{}, false, fmt.Errorf("record %q: truncated origin", key)
	}
	if b[8]&1 != 0 {
		return Record{}, false, nil
	}
	return Record{Key: key, Value: slices.Clone(b[11+n:])}, true, nil
}
