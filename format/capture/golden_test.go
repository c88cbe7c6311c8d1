package capture

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		must(t, os.MkdirAll("testdata", 0o755))
		must(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", name, got)
	}
}

var labAddrs = map[string][]netip.Addr{
	"h1:eth0": {netip.MustParseAddr("10.0.1.10")},
	"r1:eth0": {netip.MustParseAddr("10.0.1.1")},
	"r1:eth1": {netip.MustParseAddr("10.0.2.1")},
	"h2:eth0": {netip.MustParseAddr("10.0.2.10")},
}

// TestGoldenDecode: the live decode of the session, at every interface on
// its path.
func TestGoldenDecode(t *testing.T) {
	pkts := tcpSession(t, "h1:eth0", "r1:eth0", "r1:eth1", "h2:eth0")
	dc := NewDecoder()
	dc.Location = time.UTC
	var b strings.Builder
	for i := range pkts {
		b.WriteString(dc.Line(&pkts[i]))
		b.WriteByte('\n')
	}
	golden(t, "session.decode", b.String())
}

// TestGoldenLadder: the ladder of the session, live and from a file.
func TestGoldenLadder(t *testing.T) {
	pkts := tcpSession(t, "h1:eth0", "r1:eth0", "r1:eth1", "h2:eth0")
	l := NewLadder()
	for id, a := range labAddrs {
		l.AddInterface(id, a)
	}
	var live strings.Builder
	for i := range pkts {
		for _, s := range l.Add(&pkts[i]) {
			if len(s) > 100 {
				t.Errorf("line of %d columns: %q", len(s), s)
			}
			live.WriteString(s)
			live.WriteByte('\n')
		}
	}
	golden(t, "session.ladder.live", live.String())
	golden(t, "session.ladder", l.Render())
}
