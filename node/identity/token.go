package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"strings"
)

// A token as a user holds it is "lnt_" + public id + "_" + secret: the id
// (10 lowercase base32 characters) finds the stored record, the secret
// (52 base32 characters, 256 random bits) is checked against the stored
// SHA-256 hash. The secret is random, not a password, so a fast hash is
// right; the prefix makes a leaked token easy to find (as GitHub's ghp_).

const tokenPrefix = "lnt_"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewToken makes a token: the string to hand the user, its public id and
// the hash to store.
func NewToken() (token, id string, hash [32]byte) {
	var idb [6]byte
	var sec [32]byte
	rand.Read(idb[:])
	rand.Read(sec[:])
	id = strings.ToLower(b32.EncodeToString(idb[:]))
	secret := strings.ToLower(b32.EncodeToString(sec[:]))
	return tokenPrefix + id + "_" + secret, id, HashSecret(secret)
}

// ErrMalformedToken is a bearer token that is not a labnet token.
var ErrMalformedToken = errors.New("not a labnet token (lnt_...)")

// ParseToken splits a token into its public id and secret.
func ParseToken(token string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", "", ErrMalformedToken
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 10 || len(secret) != 52 || !lowerBase32(id) || !lowerBase32(secret) {
		return "", "", ErrMalformedToken
	}
	return id, secret, nil
}

func lowerBase32(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// HashSecret is what is stored of a token's secret.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// Matches reports, in constant time, whether secret is t's.
func (t Token) Matches(secret string) bool {
	h := HashSecret(secret)
	return subtle.ConstantTimeCompare(h[:], t.Hash[:]) == 1
}
