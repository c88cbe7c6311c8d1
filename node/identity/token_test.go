package identity

import (
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	tok, id, hash := NewToken()
	gotID, secret, err := ParseToken(tok)
	if err != nil || gotID != id {
		t.Fatalf("ParseToken(%q) = %q, %v; want id %q", tok, gotID, err, id)
	}
	stored := Token{ID: id, Hash: hash}
	if !stored.Matches(secret) {
		t.Fatal("the token's own secret does not match its hash")
	}
	if stored.Matches(strings.Repeat("a", len(secret))) {
		t.Fatal("another secret matches")
	}
	other, _, _ := NewToken()
	if other == tok {
		t.Fatal("two tokens are the same")
	}
}

func TestParseTokenRefuses(t *testing.T) {
	good, _, _ := NewToken()
	for _, s := range []string{"", "lnt_", "Bearer " + good, strings.ToUpper(good), good + "x", good[:len(good)-1],
		strings.Replace(good, "lnt_", "lnx_", 1), "lnt_abcdefghij", "lnt_abcdefghij_" + strings.Repeat("1", 52)} {
		if _, _, err := ParseToken(s); err == nil {
			t.Errorf("ParseToken(%q) accepted", s)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	good, _, _ := NewToken()
	f.Add(good)
	f.Add("lnt_abcdefghij_")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := ParseToken(s)
		if err == nil && "lnt_"+id+"_"+secret != s {
			t.Fatalf("ParseToken(%q) = %q, %q: not the token's parts", s, id, secret)
		}
	})
}
