package api

import (
	"regexp"
	"strings"
)

// idPattern is AIP-122's resource id: lowercase letters, digits and hyphens,
// starting with a letter or digit and not ending with a hyphen (an RFC 1123
// DNS label).
var idPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func validID(id string) bool { return idPattern.MatchString(id) }

const idRule = "must be a lowercase DNS label (a-z, 0-9, '-', 1-63 characters, starting and ending with a letter or digit)"

func labName(lab string) string         { return "labs/" + lab }
func networkName(lab, id string) string { return "labs/" + lab + "/networks/" + id }
func hostName(lab, id string) string    { return "labs/" + lab + "/hosts/" + id }
func labPrefix(lab string) string       { return "labs/" + lab + "/" }
func networksPrefix(lab string) string  { return "labs/" + lab + "/networks/" }
func hostsPrefix(lab string) string     { return "labs/" + lab + "/hosts/" }

// parseLabName parses "labs/{lab}".
func parseLabName(name string) (string, bool) {
	lab, ok := strings.CutPrefix(name, "labs/")
	return lab, ok && validID(lab)
}

// parseChild parses "labs/{lab}/{collection}/{id}".
func parseChild(name, collection string) (lab, id string, ok bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "labs" || parts[2] != collection || !validID(parts[1]) || !validID(parts[3]) {
		return "", "", false
	}
	return parts[1], parts[3], true
}

// shortID accepts "id" or "labs/{lab}/{collection}/{id}" (of the same lab)
// and returns id.
func shortID(name, lab, collection string) (string, bool) {
	if !strings.Contains(name, "/") {
		return name, validID(name)
	}
	l, id, ok := parseChild(name, collection)
	return id, ok && l == lab
}

// lastSegment returns what follows the last "/".
func lastSegment(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }
