package lab

import "testing"

func TestNamesRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Collection
		lab  string
		id   string
	}{
		{"labs/demo/networks/lan", Networks, "demo", "lan"},
		{"labs/demo/hosts/h1", Hosts, "demo", "h1"},
		{"labs/a-1/hosts/r-2", Hosts, "a-1", "r-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ChildName(tc.lab, tc.c, tc.id); got != tc.name {
				t.Errorf("ChildName = %q", got)
			}
			lab, id, ok := ParseChild(tc.name, tc.c)
			if !ok || lab != tc.lab || id != tc.id {
				t.Errorf("ParseChild = %q, %q, %v", lab, id, ok)
			}
			if got := ID(tc.name); got != tc.id {
				t.Errorf("ID = %q", got)
			}
			if id, ok := ShortID(tc.name, tc.lab, tc.c); !ok || id != tc.id {
				t.Errorf("ShortID(full) = %q, %v", id, ok)
			}
			if id, ok := ShortID(tc.id, tc.lab, tc.c); !ok || id != tc.id {
				t.Errorf("ShortID(short) = %q, %v", id, ok)
			}
			k, ok := ParseKey(tc.name)
			if !ok || k.Lab != tc.lab || k.ID != tc.id || k.String() != tc.name {
				t.Errorf("ParseKey = %+v, %v", k, ok)
			}
		})
	}
	if got, ok := ParseLabName(LabName("demo")); !ok || got != "demo" {
		t.Errorf("ParseLabName(LabName) = %q, %v", got, ok)
	}
	if k, ok := ParseKey("labs/demo"); !ok || k.Kind != KindLab || k.String() != "labs/demo" {
		t.Errorf("ParseKey(lab) = %+v, %v", k, ok)
	}
	if got := NodeID(NodeName("n1")); got != "n1" {
		t.Errorf("NodeID(NodeName) = %q", got)
	}
	if got := NodeID("n1"); got != "n1" {
		t.Errorf("NodeID(bare) = %q", got)
	}
}

func TestNamesReject(t *testing.T) {
	for _, name := range []string{
		"", "labs", "labs/", "labs/Demo", "labs/demo/", "labs/-x", "labs/x-",
		"labs/demo/hosts", "labs/demo/hosts/", "labs/demo/hosts/H1",
		"labs/demo/hosts/h1/x", "lab/demo/hosts/h1", "labs/demo/routers/r1",
		"labs//hosts/h1", "/labs/demo/hosts/h1",
	} {
		if _, _, ok := ParseChild(name, Hosts); ok {
			t.Errorf("ParseChild(%q, hosts) accepted", name)
		}
		if name != "labs/demo/hosts/h1" {
			if k, ok := ParseKey(name); ok && k.Kind != KindLab {
				t.Errorf("ParseKey(%q) = %+v", name, k)
			}
		}
	}
	for _, name := range []string{"labs/demo/hosts/h1", "labs/Demo", "labs/", "demo", "labs/a/b"} {
		if _, ok := ParseLabName(name); ok {
			t.Errorf("ParseLabName(%q) accepted", name)
		}
	}
	if _, _, ok := ParseChild("labs/demo/hosts/h1", Networks); ok {
		t.Error("a host name parsed as a network's")
	}
	if _, ok := ShortID("labs/other/hosts/h1", "demo", Hosts); ok {
		t.Error("ShortID accepted a name of another lab")
	}
	if _, ok := ShortID("H1", "demo", Hosts); ok {
		t.Error("ShortID accepted an uppercase id")
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"labs/demo", "labs/demo/hosts/h1", "labs/demo/networks/lan", "labs//", "nodes/n1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := ParseKey(s)
		if ok && k.String() != s {
			t.Fatalf("ParseKey(%q) = %+v, which is %q", s, k, k.String())
		}
	})
}
