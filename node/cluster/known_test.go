package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKnownFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known-nodes.json")
	k, err := loadKnown(path, "me")
	if err != nil {
		t.Fatal(err)
	}
	k.saw(&Member{Name: "teacher", Addr: "192.0.2.1:7946", Meta: NodeMeta{Role: RoleControl}})
	k.saw(&Member{Name: "alice", Addr: "192.0.2.2:7946", Meta: NodeMeta{Role: RoleMember}})
	k.saw(&Member{Name: "me", Addr: "192.0.2.3:7946", Meta: NodeMeta{Role: RoleControl}})
	k.saw(&Member{Name: "assistant", Addr: "192.0.2.4:7946", Meta: NodeMeta{Role: RoleControl}})
	if err := k.save(); err != nil {
		t.Fatal(err)
	}
	k2, err := loadKnown(path, "me")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(k2.controls())
	if !strings.Contains(got, "assistant 192.0.2.4:7946") || !strings.Contains(got, "teacher 192.0.2.1:7946") || len(k2.controls()) != 2 {
		t.Errorf("reloaded: %s", got)
	}
	// A new address replaces the old; a demoted node goes.
	k2.saw(&Member{Name: "teacher", Addr: "192.0.2.9:7946", Meta: NodeMeta{Role: RoleControl}})
	k2.saw(&Member{Name: "assistant", Addr: "192.0.2.4:7946", Meta: NodeMeta{Role: RoleMember}})
	if c := k2.controls(); len(c) != 1 || c[0].Addr != "192.0.2.9:7946" {
		t.Errorf("after a move and a demotion: %v", c)
	}
	// At most maxKnown are kept.
	for i := range maxKnown + 5 {
		k2.saw(&Member{Name: fmt.Sprintf("c%02d", i), Addr: "192.0.2.5:7946", Meta: NodeMeta{Role: RoleControl}})
	}
	if n := len(k2.controls()); n != maxKnown {
		t.Errorf("%d known, want at most %d", n, maxKnown)
	}
	// No path: nothing is written.
	k3, err := loadKnown("", "me")
	if err != nil || k3.save() != nil {
		t.Errorf("no path: %v", err)
	}
}

func TestKnownFileBad(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":    "{",
		"new version": `{"version": 2, "control": []}`,
		"too big":     `{"version": 1, "control": [` + strings.Repeat(" ", maxKnownFile) + `]}`,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadKnown(path, "me")
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "delete it") {
			t.Errorf("%s: %v, want an error naming the file and what to do", name, err)
		}
	}
}

// FuzzLoadKnown: the known nodes' file, read back from disk, never panics
// and keeps only usable entries.
func FuzzLoadKnown(f *testing.F) {
	f.Add([]byte(`{"version":1,"control":[{"name":"teacher","addr":"192.0.2.1:7946","seen":1}]}`))
	f.Add([]byte(`{"version":1,"control":[{"name":"","addr":""}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "known-nodes.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := loadKnown(path, "me")
		if err != nil {
			return
		}
		for _, n := range k.controls() {
			if n.Name == "" || n.Name == "me" || n.Addr == "" {
				t.Fatalf("unusable entry kept: %+v", n)
			}
		}
	})
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := jitter(time.Second); d < 750*time.Millisecond || d > 1250*time.Millisecond {
			t.Fatalf("jitter(1s) = %v", d)
		}
	}
	if d := jitter(time.Nanosecond); d != time.Nanosecond {
		t.Errorf("jitter(1ns) = %v", d)
	}
}

// TestJoinLiveResolves: a --join host name counts as live when it
// resolves to a live member's address.
func TestJoinLiveResolves(t *testing.T) {
	r := &rejoiner{resolved: map[string]resolvedHost{}}
	live := map[string]time.Time{"127.0.0.1:7946": time.Unix(1, 0)}
	ctx := context.Background()
	for addr, want := range map[string]bool{
		"127.0.0.1:7946": true,
		"localhost:7946": true,
		"localhost:7947": false,
		"127.0.0.2:7946": false,
		"no-port":        false,
	} {
		if _, got := r.joinLive(ctx, addr, live); got != want {
			t.Errorf("joinLive(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestRejoinTargets: a known node is joined while it is not live, and
// once more when it came alive after the last join that went through.
func TestRejoinTargets(t *testing.T) {
	known, _ := loadKnown("", "me")
	known.control["teacher"] = knownNode{Name: "teacher", Addr: "127.0.0.1:2"}
	clock := time.Unix(1000, 0)
	c := &Cluster{
		cfg:     Config{Name: "me", Join: []string{"127.0.0.1:1"}, ForgetAfter: time.Hour},
		log:     testLogger(),
		now:     func() time.Time { return clock },
		members: map[string]*Member{},
		changed: map[string]time.Time{},
		known:   known,
	}
	set := func(name, addr string, st State) {
		clock = clock.Add(time.Second)
		c.members[name] = &Member{Name: name, Addr: addr, State: st}
		c.changed[name] = clock
	}
	r := newRejoiner(c)
	joined := func(addrs ...string) {
		clock = clock.Add(time.Second)
		for _, a := range addrs {
			r.joined[a] = clock
		}
	}
	ctx := context.Background()
	check := func(what string, want ...string) {
		t.Helper()
		if got := r.targets(ctx, false); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: targets %v, want %v", what, got, want)
		}
	}
	set("seed", "127.0.0.1:1", StateAlive)
	set("teacher", "127.0.0.1:2", StateAlive)
	check("live, never joined", "127.0.0.1:1", "127.0.0.1:2")
	joined("127.0.0.1:1", "127.0.0.1:2")
	check("live and joined")
	set("teacher", "127.0.0.1:2", StateDead)
	check("teacher dead", "127.0.0.1:2")
	set("teacher", "127.0.0.1:2", StateAlive)
	check("teacher back, not joined since", "127.0.0.1:2")
	joined("127.0.0.1:2")
	check("teacher back and joined")
	if got := r.targets(ctx, true); len(got) != 2 {
		t.Errorf("reclaiming: targets %v, want both", got)
	}
}
