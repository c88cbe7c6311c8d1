// Package lab is the lab model: the desired state's record types and the
// store's key layout, resource names, validation, address assignment,
// VNIs and placement. It alone knows how labs, networks and hosts are laid
// out in the store (a record's key is its resource name:
// "labs/{lab}", "labs/{lab}/networks/{network}", "labs/{lab}/hosts/{host}");
// api, runtime, failover and the cluster read and write through it.
package lab

import (
	"strings"
)

// Collection is a kind of child resource of a lab.
type Collection string

// The collections of a lab.
const (
	Networks Collection = "networks"
	Hosts    Collection = "hosts"
)

// The store's key layout: a record's key is its resource name. Only this
// package builds or parses these (owned_test.go checks).
const (
	labsPrefix  = "labs/"
	nodesPrefix = "nodes/"
	labsSegment = "labs"
)

// AllLabs is the parent that names every lab in list and watch calls
// (AIP-159).
const AllLabs = labsPrefix + "-"

// ValidID reports whether id is a resource id (IDRule): AIP-122's resource
// id, lowercase letters, digits and hyphens, starting and ending with a
// letter or digit, 1 to 63 characters (an RFC 1123 DNS label). Written
// out rather than a regular expression: apply and the runtime check every
// name of a 100,000-host lab.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 63 || id[0] == '-' || id[len(id)-1] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// IDRule says what ValidID accepts, for error messages.
const IDRule = "must be a lowercase DNS label (a-z, 0-9, '-', 1-63 characters, starting and ending with a letter or digit)"

// LabName is "labs/{lab}".
func LabName(lab string) string { return labsPrefix + lab }

// ChildName is "labs/{lab}/{collection}/{id}".
func ChildName(lab string, c Collection, id string) string {
	return LabName(lab) + "/" + string(c) + "/" + id
}

// NetworkName is "labs/{lab}/networks/{id}".
func NetworkName(lab, id string) string { return ChildName(lab, Networks, id) }

// HostName is "labs/{lab}/hosts/{id}".
func HostName(lab, id string) string { return ChildName(lab, Hosts, id) }

// NodeName is "nodes/{node}".
func NodeName(node string) string { return nodesPrefix + node }

// NodeID is the node of "nodes/{node}"; a bare node name is returned as it is.
func NodeID(name string) string { return strings.TrimPrefix(name, nodesPrefix) }

// ParseLabName parses "labs/{lab}".
func ParseLabName(name string) (string, bool) {
	lab, ok := strings.CutPrefix(name, labsPrefix)
	return lab, ok && ValidID(lab)
}

// ParseChild parses "labs/{lab}/{collection}/{id}".
func ParseChild(name string, c Collection) (lab, id string, ok bool) {
	rest, ok := strings.CutPrefix(name, labsSegment+"/")
	if !ok {
		return "", "", false
	}
	lab, rest, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", false
	}
	coll, id, ok := strings.Cut(rest, "/")
	if !ok || coll != string(c) || !ValidID(lab) || !ValidID(id) {
		return "", "", false
	}
	return lab, id, true
}

// ParseNetworkName parses "labs/{lab}/networks/{id}".
func ParseNetworkName(name string) (lab, id string, ok bool) { return ParseChild(name, Networks) }

// ParseHostName parses "labs/{lab}/hosts/{id}".
func ParseHostName(name string) (lab, id string, ok bool) { return ParseChild(name, Hosts) }

// ShortID accepts "id" or "labs/{lab}/{collection}/{id}" (of the same lab)
// and returns id.
func ShortID(name, lab string, c Collection) (string, bool) {
	if !strings.Contains(name, "/") {
		return name, ValidID(name)
	}
	l, id, ok := ParseChild(name, c)
	return id, ok && l == lab
}

// ID is the last segment of a resource name: "h1" of "labs/demo/hosts/h1".
func ID(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }
