package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
)

// adminTokenFile, in the data directory, holds the first admin's token
// (0600): labctl on the same machine reads it when it has no context,
// which keeps the single-machine quickstart free of a login step.
const adminTokenFile = "admin.token"

// adminUser is the first user, made on a new control plane.
const adminUser = "admin"

// adminWait bounds how long the bootstrapping node waits to lead, so
// that it can commit the first admin, before it says it is ready anyway.
const adminWait = 30 * time.Second

// errHasUsers ends the admin's write when the state already has users.
var errHasUsers = errors.New("the state has users")

// firstAdmin gives a control plane whose state has no users its first
// user: admin (role admin) with a session token that does not expire,
// committed through the control plane, its token in DATA/admin.token
// (0600), or --admin-token-file's token with nothing written. The
// control plane's leader loop tries it (try) once an old state has been
// imported, so that the import finds the state empty and the admin is
// not made when the import brought users.
type firstAdmin struct {
	dataDir string
	token   string // --admin-token-file's; "" makes one
	update  func(context.Context, func(*store.Tx) error) (uint64, error)
	log     *slog.Logger

	done chan struct{} // closed once the state has users
}

// newFirstAdmin is the first admin of the node that forms the control
// plane (cfg.bootstraps) while its state has no users; nil otherwise.
func newFirstAdmin(cfg Config, st *store.Store, p *controlPlane, log *slog.Logger) *firstAdmin {
	if !cfg.Control || !cfg.bootstraps() || len(lab.ListUsers(st)) > 0 {
		return nil
	}
	return &firstAdmin{dataDir: cfg.DataDir, token: cfg.AdminToken, update: p.Update, log: log, done: make(chan struct{})}
}

// wait returns once the admin is made (or the state has users), ctx ends
// or adminWait passes.
func (a *firstAdmin) wait(ctx context.Context) {
	if a == nil {
		return
	}
	t := time.NewTimer(adminWait)
	defer t.Stop()
	select {
	case <-a.done:
	case <-ctx.Done():
	case <-t.C:
		a.log.Warn("no admin user made yet: this node has not led the control plane", "waited", adminWait)
	}
}

// try makes the admin unless it is made; the leader calls it. A failed
// write is tried again on the next call. The token is never logged.
func (a *firstAdmin) try(ctx context.Context) {
	if a == nil {
		return
	}
	select {
	case <-a.done:
		return
	default:
	}
	token, id, hash := identity.NewToken()
	path := filepath.Join(a.dataDir, adminTokenFile)
	if a.token != "" {
		var secret string
		token, path = a.token, "" // Validate checked it
		id, secret, _ = identity.ParseToken(token)
		hash = identity.HashSecret(secret)
	}
	// The file is written before the commit (a token committed whose
	// file could not be written would lock the admin out) and renamed
	// into place after it (so that labctl never reads a token that does
	// not work yet).
	tmp := path + ".tmp"
	if path != "" {
		if err := writeSecret(tmp, []byte(token+"\n")); err != nil {
			a.log.Error("writing the admin credential: no admin user made", "err", err)
			return
		}
		defer func() {
			if tmp != "" {
				os.Remove(tmp)
			}
		}()
	}
	now := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := a.update(ctx, func(tx *store.Tx) error {
		if len(lab.ListUsers(tx)) > 0 {
			return errHasUsers
		}
		if err := lab.PutUser(tx, lab.User{ID: adminUser, Role: auth.Admin, Created: now}); err != nil {
			return err
		}
		return lab.PutToken(tx, auth.Token{ID: id, User: adminUser, Kind: auth.Session, Hash: hash, Created: now, Description: "the first admin's, made by labd"})
	})
	switch {
	case errors.Is(err, errHasUsers):
	case err != nil:
		a.log.Warn("making the first admin user; trying again", "err", err)
		return
	case path == "":
		a.log.Info("created user admin with the token of --admin-token-file")
	default:
		if err := os.Rename(tmp, path); err != nil {
			a.log.Error("created user admin, but its token could not be moved into place: it is in "+tmp, "file", path, "err", err)
			tmp = "" // kept: it is the admin's only copy
		} else {
			a.log.Info("created user admin; its token is in "+path+" (labctl on this machine uses it)", "file", path)
		}
	}
	close(a.done)
}

// writeSecret writes b to a new file path, readable by its owner only,
// and syncs it.
func writeSecret(path string, b []byte) error {
	os.Remove(path) // a leftover keeps its mode
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// usersWait bounds how long a new member waits for its replica to hold the
// users and tokens it checks calls against before it says it is ready.
const usersWait = 10 * time.Second

// awaitUsers waits, on a member whose replica holds no user yet (its
// first start), until the control plane's users reach it, for usersWait
// at most: until then it would refuse every token. A control plane that
// cannot be reached does not hold up the start for longer.
func (d *Daemon) awaitUsers(ctx context.Context) {
	if len(lab.ListUsers(d.store)) > 0 {
		return
	}
	deadline := time.NewTimer(usersWait)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for len(lab.ListUsers(d.store)) == 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			d.log.Warn("no users have reached this member's replica yet: calls are refused until they do", "waited", usersWait)
			return
		case <-poll.C:
		}
	}
}
