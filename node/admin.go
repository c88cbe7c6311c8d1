package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/labnet-dev/labnet/node/auth"
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

// bootstrapsAdmin reports whether this node gives a state without users
// its first admin: the control node that forms the control plane, while
// the state it holds has no users (a new plane, or one from before
// users existed).
func (d *Daemon) bootstrapsAdmin() bool {
	return d.cfg.Control && d.cfg.bootstraps() && len(lab.ListUsers(d.store)) == 0
}

// bootstrapAdmin commits user admin (role admin) with a session token
// that does not expire, through the control plane, and writes the token
// to DATA/admin.token (0600), or uses --admin-token-file's token and
// writes nothing. It tries until the write commits, the state has users
// or adminWait passes (then it warns: the next start tries again). The
// token itself is never logged.
func (d *Daemon) bootstrapAdmin(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, adminWait)
	defer cancel()
	token, id, hash := auth.NewToken()
	path := filepath.Join(d.cfg.DataDir, adminTokenFile)
	if d.cfg.AdminToken != "" {
		// Validate checked it.
		var secret string
		token, path = d.cfg.AdminToken, ""
		id, secret, _ = auth.ParseToken(token)
		hash = auth.HashSecret(secret)
	}
	// The file is written before the commit: a token committed whose
	// file could not be written would lock the admin out.
	if path != "" {
		if err := writeSecret(path, []byte(token+"\n")); err != nil {
			d.log.Error("writing the admin credential: no admin user made", "err", err)
			return
		}
	}
	now := time.Now()
	write := func(tx *store.Tx) error {
		if len(lab.ListUsers(tx)) > 0 {
			return errHasUsers
		}
		if err := lab.PutUser(tx, lab.User{ID: adminUser, Role: auth.Admin, Created: now}); err != nil {
			return err
		}
		return lab.PutToken(tx, auth.Token{ID: id, User: adminUser, Kind: auth.Session, Hash: hash, Created: now, Description: "the first admin's, made by labd"})
	}
	var err error
	for {
		if _, err = d.control.Update(ctx, write); err == nil || errors.Is(err, errHasUsers) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	switch {
	case err == nil && path != "":
		d.log.Info("created user admin; its token is in "+path+" (labctl on this machine uses it)", "file", path)
		return
	case err == nil:
		d.log.Info("created user admin with the token of --admin-token-file")
		return
	case errors.Is(err, errHasUsers):
	default:
		d.log.Warn("no admin user made: this node did not lead the control plane in time; the next start tries again", "err", err)
	}
	if path != "" {
		os.Remove(path)
	}
}

// writeSecret writes b to path, readable by its owner only, replacing
// what was there at once (a rename) so that no reader sees half of it.
func writeSecret(path string, b []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp) // a leftover keeps its mode
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
