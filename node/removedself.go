package node

import (
	"bytes"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/labnet-dev/labnet/node/auth"
)

// removedMarkFile, in the data directory, holds the serial of the
// certificate this node had when a control node refused it as removed
// (labctl node remove), so that a restart with the same files runs no
// host from its old replica either. A certificate from a new invite has
// another serial, which the mark does not name.
const removedMarkFile = "removed"

// removedSelf is whether an admin removed this node: a member learns it
// when a control node refuses its Follow stream as removed. It then runs
// no host at all (runtime Config.Removed) and says so, once.
type removedSelf struct {
	dir     string
	serial  func() string // the node certificate's serial, "" without one
	changed chan<- struct{}
	log     *slog.Logger
	on      atomic.Bool
}

// load sets the mark from the data directory: on when it names the
// current certificate.
func (r *removedSelf) load() {
	b, err := os.ReadFile(filepath.Join(r.dir, removedMarkFile))
	if err != nil {
		return
	}
	if s := r.serial(); s != "" && string(bytes.TrimSpace(b)) == s {
		r.on.Store(true)
		r.log.Error(removedMessage)
	}
}

// is reports whether this node was removed.
func (r *removedSelf) is() bool { return r.on.Load() }

// set marks this node removed (the follower was refused as removed).
func (r *removedSelf) set() {
	if r.on.Swap(true) {
		return
	}
	r.log.Error(removedMessage)
	if s := r.serial(); s != "" {
		if err := auth.WriteSecretFile(filepath.Join(r.dir, removedMarkFile), []byte(s+"\n")); err != nil {
			r.log.Warn("keeping the removal mark", "err", err)
		}
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// clear ends the mark: the node enrolled again with a new invite.
func (r *removedSelf) clear() {
	if !r.on.Swap(false) {
		return
	}
	if err := os.Remove(filepath.Join(r.dir, removedMarkFile)); err != nil && !os.IsNotExist(err) {
		r.log.Warn("dropping the removal mark", "err", err)
	}
	r.log.Info("enrolled again with a new invite: this node runs hosts again")
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

const removedMessage = "an admin removed this node from the cluster (labctl node remove): it runs no hosts and the other nodes refuse it; to come back, ask for a new invite (labctl node invite) and start labd with its --enroll line"

// serial is the node certificate's serial (hex), "" without one.
func (p *pki) serial() string {
	der := p.certDER()
	if der == nil {
		return ""
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return ""
	}
	return c.SerialNumber.Text(16)
}
