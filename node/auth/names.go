package auth

import "strings"

// The policy reads the API's resource names ("labs/{lab}/hosts/{host}",
// "users/{user}/tokens/{token}"), whose layout node/lab owns. node/lab
// imports this package, so the policy cannot use its name helpers: it
// reads and makes names by their segments, as Authorize does, and never
// touches a store key.

// The collections a name's segments may name.
const (
	labsColl     = "labs"
	hostsColl    = "hosts"
	networksColl = "networks"
	usersColl    = "users"
	tokensColl   = "tokens"
)

// join makes a name of its segments.
func join(segs ...string) string { return strings.Join(segs, "/") }

// labOf is the lab of a name in one ("labs/{lab}" or below it); ok is
// false for any other name, and for "labs/-" (every lab).
func labOf(name string) (string, bool) {
	seg := strings.SplitN(name, "/", 3)
	if len(seg) < 2 || seg[0] != labsColl || seg[1] == "" || seg[1] == "-" {
		return "", false
	}
	return seg[1], true
}
