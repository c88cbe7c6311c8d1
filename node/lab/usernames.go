package lab

import "strings"

// The API's names of users and tokens: "users/{user}" and
// "users/{user}/tokens/{token}". A user's record is stored under its
// name; a token's under "tokens/{token}" (users.go), so that a bearer
// token is found by its id alone.

// AllUsers is the parent that names every user's tokens (AIP-159).
const AllUsers = usersPrefix + "-"

const tokensSegment = "tokens"

// UserName is "users/{user}".
func UserName(user string) string { return usersPrefix + user }

// ParseUserName parses "users/{user}".
func ParseUserName(name string) (string, bool) {
	user, ok := strings.CutPrefix(name, usersPrefix)
	return user, ok && ValidID(user)
}

// TokenName is "users/{user}/tokens/{token}".
func TokenName(user, id string) string { return UserName(user) + "/" + tokensSegment + "/" + id }

// ParseTokenName parses "users/{user}/tokens/{token}"; user is "-" in
// "users/-/tokens/{token}" (the token of whichever user holds it).
func ParseTokenName(name string) (user, id string, ok bool) {
	rest, ok := strings.CutPrefix(name, usersPrefix)
	if !ok {
		return "", "", false
	}
	user, rest, ok = strings.Cut(rest, "/")
	if !ok || user != "-" && !ValidID(user) {
		return "", "", false
	}
	id, ok = strings.CutPrefix(rest, tokensSegment+"/")
	if !ok || !validTokenID(id) {
		return "", "", false
	}
	return user, id, true
}

// validTokenID reports whether id can be a token's public id: lowercase
// base32 (identity.NewToken's ids are 10 characters).
func validTokenID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}
