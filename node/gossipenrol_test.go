package node

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
)

// TestEnrolWhileChecked: a node not enrolled yet, with no record, joins a
// control node that already checks its peers: records are not required
// yet (cluster.Config.RequireIdentity is off in labd), so the control node
// admits it and it enrols; once its record is written it is still
// admitted, now checked against it.
func TestEnrolWhileChecked(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	seed := gossipPort(t)
	teacher, _ := runDaemon(t, Config{Name: "teacher", Control: true, DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0"}, log)
	waitUntil(t, "the leader", func() bool { return teacher.control.ctl.IsLeader() })
	write := func(d *Daemon, name, kind string) {
		t.Helper()
		d.pki.mu.Lock()
		c := d.pki.cert.Leaf
		d.pki.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := teacher.control.Update(ctx, func(tx *store.Tx) error {
			return lab.PutNodeIdentity(tx, lab.NodeIdentity{Name: name, Kind: kind, Cert: c.Raw, Serial: c.SerialNumber.Text(16), NotAfter: c.NotAfter})
		}); err != nil {
			t.Fatal(err)
		}
	}
	write(teacher, "teacher", "control")

	bob, _ := runDaemon(t, Config{Name: "bob-laptop", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", Join: []string{seed}}, log)
	waitUntil(t, "bob to enrol", bob.pki.hasCert)
	alive := func() bool {
		for _, m := range teacher.members.cl.Members() {
			if m.Name == "bob-laptop" && m.State == cluster.StateAlive {
				return true
			}
		}
		return false
	}
	waitUntil(t, "teacher to admit bob before his record", alive)
	write(bob, "bob-laptop", "member")
	waitUntil(t, "teacher to admit bob", func() bool {
		for _, m := range teacher.members.cl.Members() {
			if m.Name == "bob-laptop" && m.State == cluster.StateAlive {
				return true
			}
		}
		return false
	})
}
