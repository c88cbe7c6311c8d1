package control

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestElectionWarningAtStart: raft's "starting election" warning is
// information on a node that never had a leader (every start) and a
// warning once a leader has gone silent.
func TestElectionWarningAtStart(t *testing.T) {
	var buf bytes.Buffer
	l := newHclog(slog.New(slog.NewTextHandler(&buf, nil)))
	l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "", "last-leader-id", "")
	l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "127.0.0.1:7701", "last-leader-id", "teacher")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[1], "level=WARN") {
		t.Fatalf("want INFO then WARN, got:\n%s", buf.String())
	}
}
