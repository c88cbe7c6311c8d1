package lab

import (
	"regexp"
	"strings"
	"testing"
)

// The regular expression and the parse ValidID and ParseChild replaced:
// the written-out forms must agree with them on every input.
var refIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func refParseChild(name string, c Collection) (string, string, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != labsSegment || parts[2] != string(c) || !refIDPattern.MatchString(parts[1]) || !refIDPattern.MatchString(parts[3]) {
		return "", "", false
	}
	return parts[1], parts[3], true
}

var idSeeds = []string{
	"", "a", "-", "a-", "-a", "a-b", "A", "a_b", "0", "9z", "a.b", "é",
	strings.Repeat("a", 63), strings.Repeat("a", 64), "a" + strings.Repeat("-", 61) + "b",
	"labs/l/hosts/h", "labs/l/networks/n", "labs/l/hosts/h/x", "labs//hosts/h", "labs/l/hosts/",
	"lab/l/hosts/h", "labs/L/hosts/h", "labs/l/hosts/-h", "labs/l/hostsx/h", "labs/l",
}

func checkIDAgree(t *testing.T, s string) {
	if got, want := ValidID(s), refIDPattern.MatchString(s); got != want {
		t.Errorf("ValidID(%q) = %v, the pattern says %v", s, got, want)
	}
	for _, c := range []Collection{Hosts, Networks} {
		l, id, ok := ParseChild(s, c)
		wl, wid, wok := refParseChild(s, c)
		if l != wl || id != wid || ok != wok {
			t.Errorf("ParseChild(%q, %s) = %q %q %v, want %q %q %v", s, c, l, id, ok, wl, wid, wok)
		}
	}
}

func TestValidIDAgrees(t *testing.T) {
	for _, s := range idSeeds {
		checkIDAgree(t, s)
	}
}

func FuzzValidID(f *testing.F) {
	for _, s := range idSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkIDAgree(t, s) })
}
