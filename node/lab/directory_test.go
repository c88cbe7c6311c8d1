package lab

import (
	"fmt"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func TestDirectory(t *testing.T) {
	s := openStore(t)
	_, id, hash := identity.NewToken()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	update(t, s, func(tx *store.Tx) error {
		if err := PutUser(tx, User{ID: "alice", Role: identity.Student}); err != nil {
			return err
		}
		if err := PutToken(tx, identity.Token{ID: id, User: "alice", Kind: identity.Session, Hash: hash, Expires: exp, Description: "laptop"}); err != nil {
			return err
		}
		if err := PutLab(tx, &labv1.Lab{Name: LabName("mine"), Owner: "alice"}); err != nil {
			return err
		}
		if err := PutLab(tx, &labv1.Lab{Name: LabName("open"), Owner: "bob", Shared: true}); err != nil {
			return err
		}
		if err := PutLab(tx, &labv1.Lab{Name: LabName("old")}); err != nil {
			return err
		}
		// Only hosts, no lab record; and a record that does not decode.
		if err := PutHost(tx, host("bare", "h1", "n1")); err != nil {
			return err
		}
		tx.Put(LabName("junk"), []byte{0xff, 0xff})
		return nil
	})
	d := NewDirectory(s)

	if r, ok := d.User("alice"); !ok || r != identity.Student {
		t.Errorf("User(alice) = %q, %v", r, ok)
	}
	if r, ok := d.User("bob"); ok {
		t.Errorf("User(bob) = %q, true; want none", r)
	}
	tok, ok := d.Token(id)
	if !ok || tok.User != "alice" || tok.Kind != identity.Session || tok.Hash != hash || !tok.Expires.Equal(exp) || tok.Description != "laptop" {
		t.Errorf("Token(%s) = %+v, %v", id, tok, ok)
	}
	if _, ok := d.Token("nosuchtoken"); ok {
		t.Error("Token of an id never issued found")
	}

	for _, c := range []struct {
		id   string
		info identity.LabInfo
		ok   bool
	}{
		{"mine", identity.LabInfo{Owner: "alice"}, true},
		{"open", identity.LabInfo{Owner: "bob", Shared: true}, true},
		{"old", identity.LabInfo{}, true},
		{"none", identity.LabInfo{}, false},
		{"bare", identity.LabInfo{}, false},
		{"junk", identity.LabInfo{}, false},
		{"", identity.LabInfo{}, false},
		{"bare/hosts/h1", identity.LabInfo{}, false}, // a host record is not a lab's
		{"Mine", identity.LabInfo{}, false},
	} {
		info, ok := d.Lab(c.id)
		if info != c.info || ok != c.ok {
			t.Errorf("Lab(%q) = %+v, %v; want %+v, %v", c.id, info, ok, c.info, c.ok)
		}
	}

	// Revoked (deleted) tokens and deleted users are gone at once.
	update(t, s, func(tx *store.Tx) error { DeleteUser(tx, "alice"); return nil })
	if _, ok := d.User("alice"); ok {
		t.Error("deleted user found")
	}
	if _, ok := d.Token(id); ok {
		t.Error("token of a deleted user found")
	}
}

func TestDisown(t *testing.T) {
	s := openStore(t)
	update(t, s, func(tx *store.Tx) error {
		for _, l := range []*labv1.Lab{
			{Name: LabName("a1"), Owner: "alice", Shared: true, Description: "kept"},
			{Name: LabName("a2"), Owner: "alice"},
			{Name: LabName("b1"), Owner: "bob"},
		} {
			if err := PutLab(tx, l); err != nil {
				return err
			}
		}
		return PutHost(tx, host("a1", "h1", "n1"))
	})
	var ids []string
	update(t, s, func(tx *store.Tx) error {
		var err error
		ids, err = Disown(tx, "alice")
		return err
	})
	if len(ids) != 2 || ids[0] != "a1" || ids[1] != "a2" {
		t.Errorf("Disown = %q, want [a1 a2]", ids)
	}
	d := NewDirectory(s)
	for id, want := range map[string]identity.LabInfo{"a1": {Shared: true}, "a2": {}, "b1": {Owner: "bob"}} {
		if info, _ := d.Lab(id); info != want {
			t.Errorf("Lab(%s) after Disown = %+v, want %+v", id, info, want)
		}
	}
	st, err := Load(s, "a1")
	if err != nil || st.Lab.Description != "kept" || len(st.Hosts) != 1 {
		t.Errorf("lab a1 after Disown: %v, %v", st, err)
	}
}

func TestUserAndTokenNames(t *testing.T) {
	if n := UserName("alice"); n != "users/alice" {
		t.Errorf("UserName = %q", n)
	}
	if n := TokenName("alice", "abcdefgh23"); n != "users/alice/tokens/abcdefgh23" {
		t.Errorf("TokenName = %q", n)
	}
	for name, want := range map[string]bool{"users/alice": true, "users/": false, "users/Alice": false, "users/a/b": false, "labs/a": false, "alice": false} {
		if _, ok := ParseUserName(name); ok != want {
			t.Errorf("ParseUserName(%q) ok = %v", name, ok)
		}
	}
	for name, want := range map[string][2]string{
		"users/alice/tokens/abcdefgh23": {"alice", "abcdefgh23"},
		"users/-/tokens/abcdefgh23":     {"-", "abcdefgh23"},
		"users/alice/tokens/":           {},
		"users/alice/tokens/ABC":        {},
		"users/alice/tokens/a1":         {}, // 1 is not base32
		"users/alice/tokens/ab/cd":      {},
		"users/alice/keys/abcdefgh23":   {},
		"users//tokens/abcdefgh23":      {},
		"users/alice":                   {},
		"labs/alice/tokens/abcdefgh23":  {},
	} {
		u, id, ok := ParseTokenName(name)
		if ok != (want[0] != "") || u != want[0] || id != want[1] {
			t.Errorf("ParseTokenName(%q) = %q, %q, %v; want %q", name, u, id, ok, want)
		}
	}
}

// BenchmarkDirectory is what the interceptor asks of the replica on every
// call (a token, its user, a lab), with 1,000 users, tokens and labs
// stored.
func BenchmarkDirectory(b *testing.B) {
	s, err := store.Open(b.TempDir()+"/db", store.Options{Origin: "n1"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var ids []string
	if _, err := s.Update(func(tx *store.Tx) error {
		for i := range 1000 {
			u := fmt.Sprintf("u%d", i)
			_, id, hash := identity.NewToken()
			ids = append(ids, id)
			if err := PutUser(tx, User{ID: u, Role: identity.Student}); err != nil {
				return err
			}
			if err := PutToken(tx, identity.Token{ID: id, User: u, Kind: identity.Session, Hash: hash}); err != nil {
				return err
			}
			if err := PutLab(tx, &labv1.Lab{Name: LabName(fmt.Sprintf("l%d", i)), Owner: u}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	d := NewDirectory(s)
	i := 0
	for b.Loop() {
		t, ok := d.Token(ids[i%len(ids)])
		if !ok {
			b.Fatal("token not found")
		}
		if _, ok := d.User(t.User); !ok {
			b.Fatal("user not found")
		}
		if _, ok := d.Lab("l500"); !ok {
			b.Fatal("lab not found")
		}
		i++
	}
}
