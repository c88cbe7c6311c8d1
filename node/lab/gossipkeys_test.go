package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/store"
)

func key32(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestGossipKeysRecord(t *testing.T) {
	st, err := store.Open(t.TempDir()+"/db", store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := StoreGetter{St: st}
	if _, ok := GetGossipKeys(g); ok {
		t.Fatal("a new state has gossip keys")
	}
	now := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	want := GossipKeys{Keys: [][]byte{key32(1), key32(2)}, Generation: 3, Changed: now, Pending: true, Covered: []GossipKeyRemoval{{Node: "alice-laptop", At: now}}}
	if _, err := st.Update(func(tx *store.Tx) error { return PutGossipKeys(tx, want) }); err != nil {
		t.Fatal(err)
	}
	got, ok := GetGossipKeys(g)
	if !ok {
		t.Fatal("no gossip keys after Put")
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Errorf("got %s, want %s", a, b)
	}
	if !bytes.Equal(got.Primary(), key32(1)) {
		t.Errorf("primary %x", got.Primary())
	}
	for name, bad := range map[string]GossipKeys{
		"empty":        {},
		"short key":    {Keys: [][]byte{make([]byte, 20)}},
		"twice":        {Keys: [][]byte{key32(1), key32(1)}},
		"lone pending": {Keys: [][]byte{key32(1)}, Pending: true},
	} {
		if _, err := st.Update(func(tx *store.Tx) error { return PutGossipKeys(tx, bad) }); err == nil {
			t.Errorf("%s: Put accepted %+v", name, bad)
		}
	}
}

func TestParseGossipKeysRefuses(t *testing.T) {
	for _, s := range []string{
		``, `null`, `{}`, `{"keys":[]}`, `{"keys":["AAAA"]}`,
		`{"keys":["` + strings.Repeat("A", 43) + `="],"extra":1}`,
		`{"keys":["` + strings.Repeat("A", 43) + `="]} {}`,
		`{"keys":"x"}`,
	} {
		if k, err := ParseGossipKeys([]byte(s)); err == nil {
			t.Errorf("ParseGossipKeys(%q) = %+v, want an error", s, k)
		}
	}
	if _, err := ParseGossipKeys([]byte(`{"keys":["` + strings.Repeat("A", 43) + `="],"generation":1}`)); err != nil {
		t.Errorf("a valid record: %v", err)
	}
}

func FuzzParseGossipKeys(f *testing.F) {
	f.Add([]byte(`{"keys":["` + strings.Repeat("A", 43) + `="],"generation":1,"changed":"2026-12-04T21:00:00Z"}`))
	f.Add([]byte(`{"keys":["AAAAAAAAAAAAAAAAAAAAAA=="],"pending":true,"covered":[{"node":"a","at":"2026-12-04T21:00:00Z"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseGossipKeys(b)
		if err != nil {
			return
		}
		if err := k.Validate(); err != nil {
			t.Fatalf("parsed a keyring Validate refuses: %v", err)
		}
		again, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseGossipKeys(again); err != nil {
			t.Fatalf("re-encoded keyring refused: %v", err)
		}
	})
}

func TestNextGossipKeys(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	const promote, drop = 5 * time.Second, 30 * time.Second
	n := byte(10)
	newKey := func() ([]byte, error) { n++; return key32(n), nil }
	k := NewGossipKeys(key32(1), t0)
	ids := []NodeIdentity{{Name: "bob-laptop"}}
	step := func(at time.Duration, want string) {
		t.Helper()
		next, got, err := NextGossipKeys(k, ids, t0.Add(at), promote, drop, newKey)
		if err != nil || got != want {
			t.Fatalf("at %v: step %q, %v; want %q", at, got, err, want)
		}
		if got != "" && next.Generation != k.Generation+1 {
			t.Fatalf("at %v: generation %d after %d", at, next.Generation, k.Generation)
		}
		if err := next.Validate(); err != nil {
			t.Fatalf("at %v: %v", at, err)
		}
		k = next
	}
	step(time.Second, "")
	ids = append(ids, NodeIdentity{Name: "alice-laptop", Removed: true, RemovedAt: t0.Add(2 * time.Second)})
	step(3*time.Second, KeyRotate)
	if !k.Pending || len(k.Keys) != 2 || !bytes.Equal(k.Keys[0], key32(1)) || !bytes.Equal(k.Keys[1], key32(11)) {
		t.Fatalf("after rotate: %+v", k)
	}
	step(4*time.Second, "")
	ids = append(ids, NodeIdentity{Name: "carol-laptop", Removed: true, RemovedAt: t0.Add(5 * time.Second)})
	step(7*time.Second, "") // the pending key is promoted first
	step(8*time.Second, KeyPromote)
	if k.Pending || !bytes.Equal(k.Primary(), key32(11)) || len(k.Keys) != 2 {
		t.Fatalf("after promote: %+v", k)
	}
	step(9*time.Second, KeyRotate) // carol may have seen key 11
	step(14*time.Second, KeyPromote)
	if !bytes.Equal(k.Primary(), key32(12)) || len(k.Keys) != 3 {
		t.Fatalf("after the second promote: %+v", k)
	}
	step(40*time.Second, "")
	step(44*time.Second, KeyDrop)
	if len(k.Keys) != 1 || !bytes.Equal(k.Primary(), key32(12)) {
		t.Fatalf("after drop: %+v", k)
	}
	step(100*time.Second, "")
	// A failing key source is an error, and nothing changes.
	ids = append(ids, NodeIdentity{Name: "dave-laptop", Removed: true, RemovedAt: t0.Add(101 * time.Second)})
	if _, got, err := NextGossipKeys(k, ids, t0.Add(102*time.Second), promote, drop, func() ([]byte, error) { return nil, errors.New("no entropy") }); err == nil || got != "" {
		t.Errorf("failing newKey: %q, %v", got, err)
	}
}
