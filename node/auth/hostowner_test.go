package auth

import "testing"

// TestHostOwner: in a class lab the teacher owns, a student named as a
// host's owner reads, operates, captures and impairs that host, and
// nothing else of the lab: not another student's host, not the lab's
// desired state.
func TestHostOwner(t *testing.T) {
	dir := newFakeDir()
	dir.labs["class"] = LabInfo{Owner: "teacher", Shared: true}
	dir.labs["private"] = LabInfo{Owner: "teacher"}
	dir.hostOwners["class/alice"] = "alice"
	dir.hostOwners["class/bob"] = "bob"
	dir.hostOwners["private/alice"] = "alice"
	alice := &Principal{User: "alice", Role: Student}
	vera := &Principal{User: "vera", Role: Viewer}
	for _, tc := range []struct {
		p        *Principal
		verb     Verb
		resource string
		allowed  bool
	}{
		{alice, Exec, "labs/class/hosts/alice", true},
		{alice, Capture, "labs/class/hosts/alice", true},
		{alice, Impair, "labs/class/hosts/alice", true},
		{alice, Get, "labs/class/hosts/alice", true},
		{alice, Exec, "labs/private/hosts/alice", true}, // a private lab's host of hers too
		{alice, Get, "labs/private/hosts/alice", true},
		{alice, Get, "labs/private", false},
		{alice, Update, "labs/class/hosts/alice", false},
		{alice, Delete, "labs/class/hosts/alice", false},
		{alice, Exec, "labs/class/hosts/bob", false},
		{alice, Impair, "labs/class/hosts/bob", false},
		{alice, Capture, "labs/class/hosts/bob", false},
		{alice, Capture, "labs/class/networks/core", false},
		{alice, Update, "labs/class", false},
		{alice, Delete, "labs/class", false},
		{alice, Get, "labs/class/hosts/bob", true}, // the lab is shared
		{vera, Impair, "labs/class/hosts/alice", false},
		{vera, Exec, "labs/class/hosts/alice", false},
	} {
		err := Authorize(dir, tc.p, tc.verb, tc.resource)
		if (err == nil) != tc.allowed {
			t.Errorf("%s %s %s: %v, want allowed %v", tc.p, tc.verb, tc.resource, err, tc.allowed)
		}
	}
}

// TestLabWithoutRecord: a lab with no record (never made, or stored before
// labs had owners) may be created or read by a student, not operated.
func TestLabWithoutRecord(t *testing.T) {
	dir := newFakeDir()
	alice := &Principal{User: "alice", Role: Student}
	for _, tc := range []struct {
		verb     Verb
		resource string
		allowed  bool
	}{
		{Create, "labs/old", true},
		{Create, "labs/old/hosts", true},
		{Get, "labs/old/hosts/h1", true},
		{Exec, "labs/old/hosts/h1", false},
		{Capture, "labs/old/hosts/h1", false},
		{Impair, "labs/old/hosts/h1", false},
		{Delete, "labs/old/hosts/h1", false},
	} {
		if err := Authorize(dir, alice, tc.verb, tc.resource); (err == nil) != tc.allowed {
			t.Errorf("%s %s: %v, want allowed %v", tc.verb, tc.resource, err, tc.allowed)
		}
	}
}
