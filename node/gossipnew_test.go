package node

import (
	"log/slog"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/cluster"
)

// TestNewMembersNeverDead: with identity records required, two members
// enrolling with the cluster key are admitted by each node once their
// record and signed metadata have arrived, and never shown dead on the
// way (before, a member admitted unsigned was taken out when its record
// landed, until its signed metadata spread).
func TestNewMembersNeverDead(t *testing.T) {
	key := []byte("class key")
	seed := gossipPort(t)
	c1, _ := runDaemon(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true, Key: key}, slog.New(slog.DiscardHandler))
	waitUntil(t, "c1 leads", c1.control.isLeader)
	m1, _ := runDaemon(t, Config{Name: "m1", DataDir: t.TempDir(), API: "127.0.0.3:0", Gossip: "127.0.0.3:0", Overlay: "127.0.0.3:0", Join: []string{seed}, Key: key}, slog.New(slog.DiscardHandler))
	m2, _ := runDaemon(t, Config{Name: "m2", DataDir: t.TempDir(), API: "127.0.0.4:0", Gossip: "127.0.0.4:0", Overlay: "127.0.0.4:0", Join: []string{seed}, Key: key}, slog.New(slog.DiscardHandler))
	nodes := []*Daemon{c1, m1, m2}
	deadline := time.Now().Add(20 * time.Second)
	for {
		alive := 0
		for _, d := range nodes {
			for _, m := range d.members.cl.Members() {
				switch m.State {
				case cluster.StateAlive:
					alive++
				default:
					t.Fatalf("%s sees %s %s", d.cfg.Name, m.Name, m.State)
				}
			}
		}
		if alive == len(nodes)*len(nodes) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d members alive after 20 s", alive, len(nodes)*len(nodes))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// And they stay so a while (the recheck runs every second).
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, d := range nodes {
			for _, m := range d.members.cl.Members() {
				if m.State != cluster.StateAlive {
					t.Fatalf("%s sees %s %s", d.cfg.Name, m.Name, m.State)
				}
			}
		}
	}
}
