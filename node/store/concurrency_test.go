package store

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentReadersAndWriters runs readers (Get, List, Snapshot, Since,
// Read) beside writers (Update, Apply with conditions) for the race
// detector, and checks what every reader sees is whole: a batch writes
// two keys with the same value, so a reader never sees them differ at one
// revision.
func TestConcurrentReadersAndWriters(t *testing.T) {
	s := openStore(t, dbPath(t))
	var writers, readers sync.WaitGroup
	const writes = 50
	for w := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range writes {
				v := []byte(fmt.Sprint(w, "-", i))
				for {
					b, err := s.Read(func(tx *Tx) error {
						tx.Get("pair/a")
						tx.Put("pair/a", v)
						tx.Put("pair/b", v)
						return nil
					})
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := s.Apply(b); err == nil {
						break
					}
				}
			}
		}()
	}
	stop := make(chan struct{})
	for range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				recs, rev := s.ListRev("pair/")
				if len(recs) == 2 && (string(recs[0].Value) != string(recs[1].Value) || recs[0].Rev != recs[1].Rev) {
					t.Errorf("revision %d: a torn batch: %+v", rev, recs)
					return
				}
				if _, err := s.Since(rev); err != nil {
					t.Errorf("Since(%d): %v", rev, err)
					return
				}
				s.Get("pair/a")
				s.Snapshot()
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	if got := s.Revision(); got != 2*writes {
		t.Errorf("Revision = %d, want %d", got, 2*writes)
	}
}
