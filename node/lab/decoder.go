package lab

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Decoder reads every network and host as ReadAll does, again and again,
// decoding only the records whose bytes changed since its last read: the
// runtime reads after every change to the store, and a change to one host
// of 100,000 must not decode the other 99,999. A record that did not
// change is the same *labv1.Network or *labv1.Host as in the last read
// (callers may tell unchanged records by pointer), so callers must not
// modify what it returns. Not safe for concurrent use.
type Decoder struct {
	recs map[string]decodedRecord // by key
}

type decodedRecord struct {
	value []byte // the store's bytes, shared with it
	net   *labv1.Network
	host  *labv1.Host
}

// ReadAll is ReadAll(r), reusing the records decoded before.
func (d *Decoder) ReadAll(r Reader) (All, error) {
	all := All{Networks: map[string]*labv1.Network{}}
	var errs []error
	recs := make(map[string]decodedRecord, len(d.recs))
	for _, rec := range r.List(scanPrefix("")) {
		k, ok := ParseKey(rec.Key)
		if !ok || (k.Kind != KindNetwork && k.Kind != KindHost) {
			continue
		}
		dr, ok := d.recs[rec.Key]
		if !ok || !bytes.Equal(dr.value, rec.Value) {
			dr = decodedRecord{value: rec.Value}
			var err error
			if k.Kind == KindNetwork {
				dr.net = &labv1.Network{}
				err = proto.Unmarshal(rec.Value, dr.net)
			} else {
				dr.host = &labv1.Host{}
				err = proto.Unmarshal(rec.Value, dr.host)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("record %s: %w", rec.Key, err))
				continue
			}
		}
		recs[rec.Key] = dr
		if dr.net != nil {
			all.Networks[rec.Key] = dr.net
		} else {
			all.Hosts = append(all.Hosts, dr.host)
		}
	}
	d.recs = recs
	return all, errors.Join(errs...)
}
