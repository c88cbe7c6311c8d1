package lab

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/store"
)

// The users and tokens of the API (node/auth), in the control plane's
// state so that every node can check every call against its replica:
// "users/{user}" holds a user's role, "tokens/{id}" a token's hash (never
// its secret), user and expiry. A token is found by its public id, the
// part of the token before the secret.
const (
	usersPrefix  = "users/"
	tokensPrefix = "tokens/"
)

// Getter reads one record: a *store.Tx is one, and StoreGetter makes a
// *store.Store one (a map lookup, not a scan: tokens are checked on every
// call).
type Getter interface {
	Get(key string) ([]byte, bool)
}

// StoreGetter reads single records of a store.
type StoreGetter struct{ St *store.Store }

// Get is the value at key.
func (g StoreGetter) Get(key string) ([]byte, bool) {
	r, ok := g.St.Get(key)
	return r.Value, ok
}

// User is a stored user.
type User struct {
	ID      string        `json:"-"`
	Role    identity.Role `json:"role"`
	Created time.Time     `json:"created"`
}

// tokenRecord is a stored token.
type tokenRecord struct {
	User        string             `json:"user"`
	Kind        identity.TokenKind `json:"kind"`
	Hash        string             `json:"hash"` // hex SHA-256 of the secret
	Created     time.Time          `json:"created"`
	Expires     time.Time          `json:"expires,omitzero"`
	Description string             `json:"description,omitempty"`
}

// PutUser writes user u.
func PutUser(tx *store.Tx, u User) error {
	if !ValidID(u.ID) {
		return fmt.Errorf("put user: %q %s", u.ID, IDRule)
	}
	if !u.Role.Valid() {
		return fmt.Errorf("put user %s: %q is not a role", u.ID, u.Role)
	}
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	tx.Put(usersPrefix+u.ID, b)
	return nil
}

// GetUser reads user id; ok is false when there is none.
func GetUser(r Getter, id string) (u User, ok bool) {
	v, ok := r.Get(usersPrefix + id)
	if !ok || json.Unmarshal(v, &u) != nil {
		return User{}, false
	}
	u.ID = id
	return u, true
}

// ListUsers lists the users, sorted by id.
func ListUsers(r Reader) []User {
	var out []User
	for _, rec := range r.List(usersPrefix) {
		var u User
		if json.Unmarshal(rec.Value, &u) == nil {
			u.ID = rec.Key[len(usersPrefix):]
			out = append(out, u)
		}
	}
	return out
}

// DeleteUser deletes user id and every token of theirs.
func DeleteUser(tx *store.Tx, id string) {
	for _, t := range ListTokens(tx, id) {
		tx.Delete(tokensPrefix + t.ID)
	}
	tx.Delete(usersPrefix + id)
}

// PutToken writes t (its hash, never a secret).
func PutToken(tx *store.Tx, t identity.Token) error {
	if t.ID == "" || strings.Contains(t.ID, "/") {
		return fmt.Errorf("put token: %q is not a token id", t.ID)
	}
	b, err := json.Marshal(tokenRecord{
		User: t.User, Kind: t.Kind, Hash: fmt.Sprintf("%x", t.Hash[:]),
		Created: t.Created, Expires: t.Expires, Description: t.Description,
	})
	if err != nil {
		return err
	}
	tx.Put(tokensPrefix+t.ID, b)
	return nil
}

// GetToken reads token id; ok is false when there is none.
func GetToken(r Getter, id string) (identity.Token, bool) {
	v, ok := r.Get(tokensPrefix + id)
	if !ok {
		return identity.Token{}, false
	}
	return decodeToken(id, v)
}

func decodeToken(id string, v []byte) (identity.Token, bool) {
	var rec tokenRecord
	if json.Unmarshal(v, &rec) != nil {
		return identity.Token{}, false
	}
	t := identity.Token{ID: id, User: rec.User, Kind: rec.Kind, Created: rec.Created, Expires: rec.Expires, Description: rec.Description}
	// fmt cannot scan into an array: decode the hex.
	h, err := hex.DecodeString(rec.Hash)
	if err != nil || len(h) != len(t.Hash) {
		return identity.Token{}, false
	}
	copy(t.Hash[:], h)
	return t, true
}

// ListTokens lists user's tokens ("" for every user's), sorted by user
// then id.
func ListTokens(r Reader, user string) []identity.Token {
	var out []identity.Token
	for _, rec := range r.List(tokensPrefix) {
		if t, ok := decodeToken(rec.Key[len(tokensPrefix):], rec.Value); ok && (user == "" || t.User == user) {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out
}

// DeleteToken deletes token id.
func DeleteToken(tx *store.Tx, id string) { tx.Delete(tokensPrefix + id) }
