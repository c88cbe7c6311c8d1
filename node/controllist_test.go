package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/node/follow"
)

func TestControlList(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	var mu sync.Mutex
	var gossip []follow.Candidate
	setGossip := func(list ...follow.Candidate) { mu.Lock(); gossip = list; mu.Unlock() }
	fromGossip := func() []follow.Candidate { mu.Lock(); defer mu.Unlock(); return slices.Clone(gossip) }
	c1 := follow.Candidate{Name: "c1", Addr: "127.0.0.1:7700"}
	c2 := follow.Candidate{Name: "c2", Addr: "127.0.0.2:7700"}
	c3 := follow.Candidate{Name: "c3", Addr: "127.0.0.3:7700"}

	l := openControlList(dir, fromGossip, log)
	if got := l.candidates(); len(got) != 0 {
		t.Errorf("fresh data directory: candidates %v, want none", got)
	}
	setGossip(c1, c2)
	if diff := cmp.Diff([]follow.Candidate{c1, c2}, l.candidates()); diff != "" {
		t.Errorf("from gossip (-want +got):\n%s", diff)
	}
	setGossip(c3) // the saved list follows gossip's
	if diff := cmp.Diff([]follow.Candidate{c3}, l.candidates()); diff != "" {
		t.Errorf("after gossip changed (-want +got):\n%s", diff)
	}

	// A restart with gossip empty (the --join node is away): the last list.
	setGossip()
	l = openControlList(dir, fromGossip, log)
	if diff := cmp.Diff([]follow.Candidate{c3}, l.candidates()); diff != "" {
		t.Errorf("after a restart (-want +got):\n%s", diff)
	}
	setGossip(c1)
	if diff := cmp.Diff([]follow.Candidate{c1}, l.candidates()); diff != "" {
		t.Errorf("gossip first (-want +got):\n%s", diff)
	}
	setGossip()
	if diff := cmp.Diff([]follow.Candidate{c1}, l.candidates()); diff != "" {
		t.Errorf("gossip empty again (-want +got):\n%s", diff)
	}

	// A damaged file is ignored.
	if err := os.WriteFile(filepath.Join(dir, controlListFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	l = openControlList(dir, fromGossip, log)
	if got := l.candidates(); len(got) != 0 {
		t.Errorf("damaged file: candidates %v, want none", got)
	}
}
