package lab

import (
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/store"
)

// TestTokenRoundTrip: a token put is got back by its id with its hash,
// and its secret matches; a deleted user's tokens are gone.
func TestTokenRoundTrip(t *testing.T) {
	st, err := store.Open(t.TempDir()+"/state.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	token, id, hash := auth.NewToken()
	_, secret, _ := auth.ParseToken(token)
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := st.Update(func(tx *store.Tx) error {
		if err := PutUser(tx, User{ID: "alice", Role: auth.Student, Created: now}); err != nil {
			return err
		}
		return PutToken(tx, auth.Token{ID: id, User: "alice", Kind: auth.Session, Hash: hash, Created: now})
	}); err != nil {
		t.Fatal(err)
	}
	got, ok := GetToken(StoreGetter{st}, id)
	if !ok || got.User != "alice" || got.Hash != hash || !got.Matches(secret) || got.Matches(secret[1:]+"a") {
		t.Fatalf("GetToken: %+v %v", got, ok)
	}
	if l := ListTokens(st, "alice"); len(l) != 1 || l[0].ID != id {
		t.Errorf("ListTokens: %+v", l)
	}
	if _, err := st.Update(func(tx *store.Tx) error { DeleteUser(tx, "alice"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, ok := GetToken(StoreGetter{st}, id); ok {
		t.Error("a deleted user's token is still found")
	}
}
